"""RefAtomNet (Peng et al., "Referring Atomic Video Action Recognition", ECCV'24, Sec. 4), family "Ours".

Three token streams, each brought to ``num_tokens`` tokens of width ``width`` (C):
- visual (VT, Eq. 1): BLIP-2's frozen ViT + the trained Q-Former per frame (``Blip2VideoEncoder``), Q query
  outputs per frame averaged over the T frames (as the released code does; the paper does not say how frames
  are combined) -> P_VT (Linear to C).
- textual reference (RT, Eq. 1, ``t^RT = V_VL(P_RT(V_RT(x^RT)))``), ``text_path``:
  ``"qformer"`` (default): the frozen text encoder's token features (V_RT: ``text_tokens`` (B, L, Dt) with
  ``text_mask``; "the text encoder is frozen", Sec. 5.1) -> P_RT (Linear Dt -> Q-Former width) -> the TRAINABLE
  Q-Former's text side (V_VL): BERT layers whose self-attention the text shares with each frame's queries (BLIP-2's
  joint mode; the text positions have their own feed-forward layers and no cross-attention to the image), text
  outputs averaged over the T frames like the queries; padding positions are not attended to and contribute 0.
  ``"projection"``: the frozen features -> P_RT (Linear Dt -> C) only, the Q-Former never sees the sentence: the
  controlled comparison in which every method gets the same frozen text features (README, "RefAtomNet's size").
- location-semantic (LS, Eq. 2-3; Eq. 2, the frozen DETR, runs in the data pipeline): ``P_LS(Concat[cat_emb, boxes])`` per detection (Linear Dt+4 -> C), detections
  that are not valid (``mask`` False) multiplied by 0. With the HOG detector (no DETR checkpoint) every detection is
  a "person": the category part is one constant vector for every token, so the stream carries the boxes only.
  The detections arrive sorted by score and thresholded (ravar_bench/data/dataset.py), except under the released
  overlay, which reads a per-query cache (``detect --per-query``: all 100 DETR queries in query order) as it is.
The cross-stream fusions (Eq. 8-9) add the other streams' attention maps (B, h, Na, N) and agent tokens, so all
streams need the same token count N: a Linear over the token axis maps L -> N (text) and No -> N (location),
the device the released code itself uses (Linear(100 -> 32) for detections, Linear(1 -> 32) for text). N is the
Q-Former's query count (32 in the full config).

Agent attention and fusions, Eq. 4-11: ``ravar_bench/encoders/agent_attention.py`` (every equation is a function
named by its number; that module's docstring lists each ambiguity of the paper and the choice made).

Eq. 12 (``eq12_aggregate``): paper: ``t_agg = sum_phi t_*^phi / N_s`` (mean over the streams), then the mean over
the N tokens gives the (B, C) feature for the shared head (the paper's heads sit "atop aggregated tokens").

Two modes (``variant``):
- ``"paper"`` (default): the equations as written: alpha = 0.125, Eq. 9 a sum, Eq. 12 a mean of the three
  streams; loss BCE + 5 * MSE (configs/_base_/runtime.py's ``loss``).
- ``"released"`` (configs/refatomnet/released.py): what the authors' code computes (see
  docs/reference/refatomnet-released-code.md): scale head_dim ** -0.5 (768 ** -0.5), LayerNorm + qkv without
  bias + agents from an MLP on Q averaged over tokens, Han et al.'s operand order (aggregate with K, broadcast
  with Q), the second softmax of Eq. 8-9 over the size-1 head axis, Eq. 9 as a 3-term average with identity,
  fused agents only in the broadcast map, residual pre-norm blocks, the text as ONE vector (mean over all L
  tokens, padding included) spread to N tokens by Linear(1 -> N), location tokens of non-person detections
  multiplied by 0, the feature = mean(video block out) + mean(text block out) + mean(location tokens BEFORE their
  block, all No of them, zeros included) - a sum, not a mean; BCE weighted 5, MSE 1; the released head shapes
  (768-512-Dropout 0.2-256-80, 768-512-128-4) with no box activation.
  NOT reproduced (outright bugs): the swapped box width/height in their box conversion, the class index -1 used
  for category 0, and the data-loader bugs (one frame read 90 times, BGR, uint8 overflow).
  Text (``text_path="qformer"``): the released code sends the caption through the Q-Former's BERT in text-only
  mode (no queries); here the same text-only pass runs on the frozen encoder's features after P_RT (the released
  BERT's own word embeddings are not reproduced: the text encoder is the frozen one every method gets).

Ablations (Table 3a, ``baselines/refatomnet_variants.py``): w/o CAAF (no Eq. 8), w/o CATF (no Eq. 9),
w/o LSAS (no location stream: Eq. 8-9 sum over RT only, N_s = 2), w/o ALSAF (no agent attention at all:
the three streams' tokens added).
"""
from __future__ import annotations

import torch
from torch import nn

from ravar_bench.data.coco import PERSON_ID
from ravar_bench.encoders.agent_attention import VARIANTS, CrossStreamAgentFusion
from ravar_bench.encoders.blip2 import Blip2VideoEncoder
from ravar_bench.method import Method
from ravar_bench.registry import register_method

TEXT_PATHS = ("qformer", "projection")  # Eq. 1's text path; see the module docstring


class TokenMap(nn.Module):
    """A Linear over the token axis: (B, n_in, C) -> (B, n_out, C). Hand-written (it is one Linear) because the
    fusion needs every stream at the same token count; identity when the counts already match."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.lin = nn.Linear(n_in, n_out) if n_in != n_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.n_in:
            raise ValueError(f"TokenMap built for {self.n_in} tokens, got {x.shape[1]}")
        return x if self.lin is None else self.lin(x.transpose(1, 2)).transpose(1, 2)


class RefAtomNetStreams(Method):
    """The three RefAtomNet token streams (Eq. 1-3) and the stream projections; subclasses choose the fusion.

    Class attributes let a registered variant change a default without re-declaring the constructor (the config
    builder injects ``num_frames`` etc. by looking at this signature).
    """

    needs = frozenset({"video", "text_tokens", "detections"})
    tower_freeze_keys = ("blip2.freeze_vision",)
    use_location_default = True
    text_paths = TEXT_PATHS  # the first is the default

    def __init__(self, num_frames: int, img_size: int, num_dets: int, text_dim: int, max_text_len: int,
                 blip2: dict | None = None, width: int = 768, variant: str = "paper",
                 use_location: bool | None = None, person_cat_id: int = PERSON_ID, text_path: str | None = None,
                 **fusion_kw):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"{self.method_name}: variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        self.text_path = text_path or self.text_paths[0]
        if self.text_path not in self.text_paths:
            raise ValueError(f"{self.method_name}: model.text_path must be one of {self.text_paths}, "
                             f"got {text_path!r}")
        self.num_frames, self.img_size, self.num_dets = num_frames, img_size, num_dets
        self.text_dim, self.max_text_len, self.width = text_dim, max_text_len, width
        self.use_location = self.use_location_default if use_location is None else use_location
        if not self.use_location:
            self.needs = frozenset(self.needs - {"detections"})
        self.person_cat_id = person_cat_id
        vis_dim, vis_tokens = self.build_visual(blip2 or {}, num_frames, img_size)
        self.num_tokens = fusion_kw.pop("num_tokens", None) or vis_tokens
        # P_VT (Eq. 1). released: no width projection when the Q-Former width already is C.
        self.p_vt = nn.Identity() if (variant == "released" and vis_dim == width) else nn.Linear(vis_dim, width)
        self.vt_tokens = TokenMap(vis_tokens, self.num_tokens)
        self.build_text(text_dim, max_text_len, width)
        if self.use_location:
            self.p_ls = nn.Linear(text_dim + 4, width)  # Eq. 3
            self.ls_tokens = TokenMap(num_dets, self.num_tokens)
        self.build_fusion(**fusion_kw)

    # ----------------------------------------------------------------------------------------- streams
    def build_visual(self, blip2: dict, num_frames: int, img_size: int) -> tuple[int, int]:
        cfg = dict(blip2)
        vision = dict(cfg.pop("vision", {}) or {})
        qformer = dict(cfg.pop("qformer", {}) or {})
        if self.text_path == "qformer":  # Eq. 1: the Q-Former's text side (its text feed-forward layers)
            if qformer.get("use_qformer_text_input") is False:
                raise ValueError(f"{self.method_name}: model.text_path='qformer' needs the Q-Former's text layers; "
                                 f"drop model.blip2.qformer.use_qformer_text_input=False")
            qformer["use_qformer_text_input"] = True
        vision.setdefault("image_size", img_size)
        if vision["image_size"] != img_size:
            raise ValueError(f"{self.method_name}: blip2.vision.image_size={vision['image_size']} but "
                             f"data.img_size={img_size}")
        self.visual = Blip2VideoEncoder(vision=vision, qformer=qformer, **cfg)
        return self.visual.hidden_size, self.visual.num_query_tokens

    def encode_visual(self, batch: dict) -> torch.Tensor:
        """Eq. 1, visual: (B, T, 3, H, W) -> per-frame Q-Former queries averaged over frames (B, Q, hidden)."""
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        return self.visual(video, clip_keys=batch.get("clip_key")).mean(dim=1)

    def build_text(self, text_dim: int, max_text_len: int, width: int) -> None:
        if self.text_path == "qformer":
            h = self.visual.hidden_size
            self.p_rt = nn.Linear(text_dim, h)  # P_RT (Eq. 1): V_RT's tokens into the Q-Former (V_VL)
            self.rt_out = nn.Identity() if h == width else nn.Linear(h, width)  # only when C differs from it
        else:
            self.p_rt = nn.Linear(text_dim, width)  # P_RT (Eq. 1)
        self.rt_tokens = TokenMap(1 if self.variant == "released" else max_text_len, self.num_tokens)

    def text_inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        tok = batch["text_tokens"]
        if tok.dim() != 3 or tok.shape[1] != self.max_text_len or tok.shape[2] != self.text_dim:
            raise ValueError(f"{self.method_name}: batch['text_tokens'] has shape {tuple(tok.shape)}, the model was "
                             f"built for (B, {self.max_text_len}, {self.text_dim}) (text_encoder.max_len / dim)")
        return tok, batch.get("text_mask")

    def encode_text(self, batch: dict) -> torch.Tensor:
        """Eq. 1, textual, without the video: (B, L, Dt) frozen token features -> (B, L', C) before the token map.
        projection: P_RT only. qformer (released): P_RT, then the Q-Former's text-only pass."""
        tok, mask = self.text_inputs(batch)
        if self.text_path == "qformer":
            x = self.rt_out(self.visual.encode_text(self.p_rt(tok), mask))
            if self.variant == "released":
                return x.mean(dim=1, keepdim=True)  # one vector: mean over all L tokens, padding included
        elif self.variant == "released":
            return self.p_rt(tok.mean(dim=1, keepdim=True))  # one vector: mean over all L tokens, padding included
        else:
            x = self.p_rt(tok)
        return x if mask is None else x * mask.unsqueeze(-1).to(x.dtype)  # padding tokens contribute nothing

    def contrastive_pair(self, batch: dict):
        """BLIP-2's ITC on Eq. 1's streams: the Q-Former's queries without text (averaged over frames; the
        best-matching query counts) against its text-only pass over P_RT(V_RT) at the first token. Only the
        Q-Former text path has one (the other paths have no text tower of BLIP-2's)."""
        if self.text_path != "qformer" or "text_tokens" not in self.needs:
            return None
        tok, mask = self.text_inputs(batch)
        text = self.visual.encode_text(self.p_rt(tok), mask)[:, 0]
        return self.encode_visual({"video": batch["video"]}), text

    def eq1_joint(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 1 (paper, text_path "qformer"): t^VT, t^RT = V_VL(V_VT(x^VT), P_RT(V_RT(x^RT))). The sentence enters
        the Q-Former beside each frame's queries; queries and text share its self-attention. Returns the queries
        (B, Q, hidden) and the text tokens (B, L, C), both averaged over the frames, padding tokens zeroed."""
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        tok, mask = self.text_inputs(batch)
        q, t = self.visual(video, self.p_rt(tok), mask, clip_keys=batch.get("clip_key"), return_text=True)
        x = self.rt_out(t.mean(dim=1))
        return q.mean(dim=1), (x if mask is None else x * mask.unsqueeze(-1).to(x.dtype))

    def eq3_location_tokens(self, batch: dict) -> torch.Tensor:
        """Eq. 3 on the detections: (B, No, C), invalid (and, released, non-person) detections zeroed."""
        det = batch["detections"]
        boxes, emb = det["boxes"], det["cat_emb"]
        if boxes.shape[1] != self.num_dets or emb.shape[1] != self.num_dets or emb.shape[2] != self.text_dim:
            raise ValueError(f"{self.method_name}: detections have {boxes.shape[1]} boxes / cat_emb "
                             f"{tuple(emb.shape)}, the model was built for No={self.num_dets} (data.num_dets), "
                             f"Dt={self.text_dim}")
        x = self.p_ls(torch.cat([emb, boxes.to(emb.dtype)], dim=-1))
        keep = det["mask"].bool() if "mask" in det else torch.ones(boxes.shape[:2], dtype=torch.bool,
                                                                   device=boxes.device)
        if self.variant == "released":
            keep = keep & (det["cat_ids"] == self.person_cat_id)
        return x * keep.unsqueeze(-1).to(x.dtype)

    def streams(self, batch: dict) -> dict[str, torch.Tensor]:
        """All streams at (B, N, C); ``ls_pre`` keeps the location tokens before the token map (B, No, C)."""
        if self.text_path == "qformer" and self.variant == "paper":
            vis, txt = self.eq1_joint(batch)
        else:
            vis, txt = self.encode_visual(batch), self.encode_text(batch)
        out = {"vt": self.vt_tokens(self.p_vt(vis)), "rt": self.rt_tokens(txt)}
        if self.use_location:
            out["ls_pre"] = self.eq3_location_tokens(batch)
            out["ls"] = self.ls_tokens(out["ls_pre"])
        return out

    # ----------------------------------------------------------------------------------------- fusion
    def build_fusion(self, **kw) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def fuse(self, s: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, batch: dict) -> torch.Tensor:
        return self.fuse(self.streams(batch))


@register_method("refatomnet", family="Ours", paper_name="RefAtomNet")
class RefAtomNet(RefAtomNetStreams):
    """RefAtomNet with agent-based location-semantic aware attentional fusion (Eq. 4-12)."""

    caaf_default = True
    catf_default = True

    def build_fusion(self, num_agents: int = 4, num_heads: int = 1, alpha: float | None = None,
                     mlp_ratio: float = 4.0, caaf: bool | None = None, catf: bool | None = None) -> None:
        streams = ("vt", "rt", "ls") if self.use_location else ("vt", "rt")
        self.fusion = CrossStreamAgentFusion(
            self.width, self.num_tokens, num_agents=num_agents, num_heads=num_heads, alpha=alpha,
            variant=self.variant, mlp_ratio=mlp_ratio, caaf=self.caaf_default if caaf is None else caaf,
            catf=self.catf_default if catf is None else catf, streams=streams)
        self.feat_dim = self.width

    def eq12_aggregate(self, outs: dict[str, torch.Tensor], s: dict[str, torch.Tensor]) -> torch.Tensor:
        """paper: mean over the N_s streams of t_*, then over tokens. released: sum of the token means of the
        video and text block outputs and of the location tokens taken before their block."""
        if self.variant == "paper":
            return torch.stack([outs[k] for k in self.fusion.streams]).mean(0).mean(dim=1)
        feat = outs["vt"].mean(dim=1) + outs["rt"].mean(dim=1)
        if self.use_location:
            feat = feat + s["ls_pre"].mean(dim=1)
        return feat

    def fuse(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        outs, _ = self.fusion({k: s[k] for k in self.fusion.streams})
        return self.eq12_aggregate(outs, s)

    def __init__(self, num_frames: int, img_size: int, num_dets: int, text_dim: int, max_text_len: int,
                 blip2: dict | None = None, width: int = 768, variant: str = "paper", num_agents: int = 4,
                 num_heads: int = 1, alpha: float | None = None, mlp_ratio: float = 4.0, caaf: bool | None = None,
                 catf: bool | None = None, use_location: bool | None = None, person_cat_id: int = PERSON_ID,
                 text_path: str | None = None):
        super().__init__(num_frames, img_size, num_dets, text_dim, max_text_len, blip2=blip2, width=width,
                         variant=variant, use_location=use_location, person_cat_id=person_cat_id, text_path=text_path,
                         num_agents=num_agents, num_heads=num_heads, alpha=alpha, mlp_ratio=mlp_ratio,
                         caaf=caaf, catf=catf)


def released_config(config_set: str = "tiny", cfg_options: dict | None = None):
    """The refatomnet tiny/full config with configs/refatomnet/released.py merged over it (the released code's
    choices): the same as ``load_config("refatomnet", config_set + "+released")``."""
    from ravar_bench.config import load_config

    return load_config("refatomnet", f"{config_set}+released", cfg_options=cfg_options)
