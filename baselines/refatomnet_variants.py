"""RefAtomNet's ablations (Table 3a), fusion alternatives (Table 3b) and XCLIP backbone (Table 4b).

All share RefAtomNet's three streams (``baselines/refatomnet.py``); each changes ONLY what its row changes.

Ablations ("Ablation" family), from the paper's definitions (the released files hold no clean ablations):
- refatomnet_wo_caaf : no cross-stream agent attention fusion (Eq. 8 skipped: M^_QA = M_QA).
- refatomnet_wo_catf : no cross-stream agent token fusion (Eq. 9 skipped: A^ = A).
- refatomnet_wo_lsas : no location-semantic stream (Eq. 8-9 sum over RT only, Eq. 12 over N_s = 2 streams).
- refatomnet_wo_alsaf: no agent-based fusion at all: the three streams' tokens are added (Table 3's w/o ALSAF and
  "Addition" rows hold identical numbers: the same experiment; here two registrations of the same computation).

Fusions ("Fusion" family) replace the whole agent-based fusion (Eq. 4-12) by:
- fusion_add        : t_VT + t_RT + t_LS, mean over tokens.
- fusion_concat     : Concat[t_VT, t_RT, t_LS] along channels, mean over tokens (feature 3C; the head's first
                      Linear mixes the streams).
- fusion_mul        : t_VT * t_RT * t_LS (element-wise), mean over tokens.
- fusion_attention_bottleneck: Nagrani et al., "Attention Bottlenecks for Multimodal Fusion", NeurIPS'21 (MBT):
  per fusion layer each stream runs a transformer layer over [its tokens ; B shared bottleneck tokens]; the
  bottleneck tokens are then averaged over the streams and feed the next layer; the streams exchange information
  only through them. Output = the mean of the streams' pooled tokens and the pooled final bottleneck.
  B = 4 bottleneck tokens (MBT's default); ``fusion_layers`` >= 2 (MBT fuses in the last 4 of 12 layers: the full
  config uses 4, the tiny one 2).
- fusion_mcomet: McOmet (Zong & Sun, AAAI'23). No code is available here, so it is rebuilt from the paper's
  abstract: (i) feature COLLECTION: a few fusion tokens cross-attend to all streams' tokens; (ii) PROPAGATION:
  each stream cross-attends to the (tight) fusion tokens, then its own FFN; (iii) higher-order relations across
  modalities: the pairwise and triplet products of the pooled streams (v*t, v*l, t*l, v*t*l) projected back to C
  and added to the mean of the pooled streams.
The transformer layers are torch's own (nn.TransformerEncoderLayer / nn.MultiheadAttention); only the wiring
between streams is written here, because that wiring IS the compared method.

Backbone ("Backbone" family): refatomnet_xclip = RefAtomNet with XCLIP's video and text encoders
(transformers XCLIPModel: ViT with cross-frame message tokens + multi-frame integration transformer; CLIP text
transformer) in place of BLIP-2 and the frozen text encoder's features. Visual tokens: the MIT-refined frame
tokens (T) and XCLIP's prompt-projected patch tokens averaged over frames (P), mapped to ``num_tokens`` tokens.
Text tokens: XCLIP's text transformer over open_clip's offline BPE tokens (the same CLIP vocabulary), frozen as
the paper freezes its text encoder. The location stream keeps the frozen text encoder's category embeddings.
"""
from __future__ import annotations

import torch
from torch import nn

from ravar_bench.data.coco import PERSON_ID
from ravar_bench.encoders.checkpoint import load_into
from ravar_bench.encoders.clip import ClipTokenizer
from ravar_bench.registry import register_method

from .refatomnet import RefAtomNet, RefAtomNetStreams, TokenMap


# ------------------------------------------------------------------------------------------------ ablations
@register_method("refatomnet_wo_caaf", family="Ablation", paper_name="w/o CAAF")
class RefAtomNetWoCAAF(RefAtomNet):
    caaf_default = False


@register_method("refatomnet_wo_catf", family="Ablation", paper_name="w/o CATF")
class RefAtomNetWoCATF(RefAtomNet):
    catf_default = False


@register_method("refatomnet_wo_lsas", family="Ablation", paper_name="w/o LSAS")
class RefAtomNetWoLSAS(RefAtomNet):
    needs = frozenset({"video", "text_tokens"})
    use_location_default = False


class _StreamFusion(RefAtomNetStreams):
    """Streams of RefAtomNet + a simple fusion; feature (B, feat_dim)."""

    def build_fusion(self, **kw) -> None:
        if kw:
            raise TypeError(f"{self.method_name}: unexpected fusion options {sorted(kw)}")
        self.feat_dim = self.width

    def _tokens(self, s):
        return [s[k] for k in ("vt", "rt", "ls") if k in s]


@register_method("refatomnet_wo_alsaf", family="Ablation", paper_name="w/o ALSAF")
class RefAtomNetWoALSAF(_StreamFusion):
    def fuse(self, s):
        return torch.stack(self._tokens(s)).sum(0).mean(dim=1)


# ------------------------------------------------------------------------------------------------ fusions
@register_method("fusion_add", family="Fusion", paper_name="Addition")
class FusionAdd(_StreamFusion):
    def fuse(self, s):
        return torch.stack(self._tokens(s)).sum(0).mean(dim=1)


@register_method("fusion_concat", family="Fusion", paper_name="Concatenation")
class FusionConcat(_StreamFusion):
    def build_fusion(self, **kw) -> None:
        super().build_fusion(**kw)
        self.feat_dim = self.width * (3 if self.use_location else 2)

    def fuse(self, s):
        return torch.cat(self._tokens(s), dim=-1).mean(dim=1)


@register_method("fusion_mul", family="Fusion", paper_name="Multiplication")
class FusionMul(_StreamFusion):
    def fuse(self, s):
        toks = self._tokens(s)
        out = toks[0]
        for t in toks[1:]:
            out = out * t
        return out.mean(dim=1)


def _layer(dim: int, heads: int, mlp_ratio: float) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                      batch_first=True, norm_first=True)


@register_method("fusion_attention_bottleneck", family="Fusion", paper_name="AttentionBottleneck")
class FusionAttentionBottleneck(RefAtomNetStreams):
    """Attention bottlenecks (MBT, Nagrani et al. NeurIPS'21, Eq. 8-9 of their paper) over RefAtomNet's streams.

    Per fusion layer l and stream k: ``[t_k^{l+1} ; z_k^{l+1}] = Transformer_k([t_k^l ; z^l])``, then
    ``z^{l+1} = mean_k z_k^{l+1}``. A stream's tokens attend only to themselves and to the B shared bottleneck
    tokens, so everything one stream learns of another passes through z, and only from the layer after it was
    written: with L >= 2 fusion layers, stream k at layer l reads what every stream wrote into z at layer l-1.
    Readout: MBT classifies from each modality's output and averages; here the mean over the streams' pooled
    tokens and the pooled final bottleneck z^L (the last update would otherwise be computed and never read).
    """

    def build_fusion(self, num_bottlenecks: int = 4, fusion_layers: int = 2, num_heads: int = 1,
                     mlp_ratio: float = 4.0) -> None:
        if fusion_layers < 2:
            raise ValueError(f"{self.method_name}: fusion_layers={fusion_layers}; attention bottlenecks need at least "
                             f"2 fusion layers (with 1, no stream ever reads what another wrote into the bottleneck)")
        self.stream_names = ("vt", "rt", "ls") if self.use_location else ("vt", "rt")
        self.bottleneck = nn.Parameter(torch.randn(1, num_bottlenecks, self.width) * 0.02)
        self.layers = nn.ModuleList(
            nn.ModuleDict({k: _layer(self.width, num_heads, mlp_ratio) for k in self.stream_names})
            for _ in range(fusion_layers))
        self.num_bottlenecks = num_bottlenecks
        self.feat_dim = self.width

    def mbt(self, toks: dict[str, torch.Tensor], z: torch.Tensor | None = None,
            bottleneck_override: list | None = None) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """The fusion layers: returns each stream's output tokens and the bottleneck after every layer.
        ``bottleneck_override[l]`` (tests) replaces z^{l+1}: with it, the streams cannot see each other at all."""
        toks = dict(toks)
        b = next(iter(toks.values())).shape[0]
        z = self.bottleneck.expand(b, -1, -1) if z is None else z
        zs = []
        for li, layer in enumerate(self.layers):
            new_z = []
            for k in self.stream_names:
                y = layer[k](torch.cat([toks[k], z], dim=1))
                toks[k], zk = y[:, :-self.num_bottlenecks], y[:, -self.num_bottlenecks:]
                new_z.append(zk)
            z = torch.stack(new_z).mean(0)  # MBT Eq. 9: the bottleneck update is averaged over modalities
            if bottleneck_override is not None:
                z = bottleneck_override[li]
            zs.append(z)
        return toks, zs

    def fuse(self, s):
        toks, zs = self.mbt({k: s[k] for k in self.stream_names})
        pooled = [toks[k].mean(dim=1) for k in self.stream_names] + [zs[-1].mean(dim=1)]
        return torch.stack(pooled).mean(0)


@register_method("fusion_mcomet", family="Fusion", paper_name="McOmet")
class FusionMcOmet(RefAtomNetStreams):
    def build_fusion(self, num_fusion_tokens: int = 4, num_heads: int = 1, mlp_ratio: float = 4.0) -> None:
        self.stream_names = ("vt", "rt", "ls") if self.use_location else ("vt", "rt")
        c = self.width
        self.fusion_tokens = nn.Parameter(torch.randn(1, num_fusion_tokens, c) * 0.02)
        self.collect_norm = nn.LayerNorm(c)
        self.collect = nn.MultiheadAttention(c, num_heads, batch_first=True)
        self.prop_norm = nn.ModuleDict({k: nn.LayerNorm(c) for k in self.stream_names})
        self.propagate = nn.ModuleDict({k: nn.MultiheadAttention(c, num_heads, batch_first=True)
                                        for k in self.stream_names})
        self.ffn = nn.ModuleDict({k: nn.Sequential(nn.LayerNorm(c), nn.Linear(c, int(c * mlp_ratio)), nn.GELU(),
                                                   nn.Linear(int(c * mlp_ratio), c)) for k in self.stream_names})
        n = len(self.stream_names)
        n_orders = n * (n - 1) // 2 + (1 if n == 3 else 0)  # pairs (+ the triplet)
        self.higher = nn.Linear(n_orders * c, c)
        self.feat_dim = c

    def fuse(self, s):
        toks = {k: s[k] for k in self.stream_names}
        b = s["vt"].shape[0]
        allt = self.collect_norm(torch.cat(list(toks.values()), dim=1))
        f = self.fusion_tokens.expand(b, -1, -1)
        f = f + self.collect(f, allt, allt, need_weights=False)[0]  # (i) collection
        pooled = []
        for k in self.stream_names:  # (ii) propagation through the fusion tokens only
            x = toks[k]
            x = x + self.propagate[k](self.prop_norm[k](x), f, f, need_weights=False)[0]
            x = x + self.ffn[k](x)
            pooled.append(x.mean(dim=1))
        orders = [pooled[i] * pooled[j] for i in range(len(pooled)) for j in range(i + 1, len(pooled))]
        if len(pooled) == 3:
            orders.append(pooled[0] * pooled[1] * pooled[2])
        return torch.stack(pooled).mean(0) + self.higher(torch.cat(orders, dim=-1))  # (iii) higher orders


# ------------------------------------------------------------------------------------------------ XCLIP
@register_method("refatomnet_xclip", family="Backbone", paper_name="RefAtomNet (XCLIP)")
class RefAtomNetXCLIP(RefAtomNet):
    needs = frozenset({"video", "text", "detections"})
    tower_freeze_keys = ("freeze_vision",)
    text_paths = ("xclip",)  # XCLIP's own text transformer (frozen), then P_RT

    def __init__(self, num_frames: int, img_size: int, num_dets: int, text_dim: int, xclip: dict | None = None,
                 width: int = 768, num_tokens: int = 32, context_length: int = 32, freeze_vision: bool = True,
                 freeze_text: bool = True, pretrained: str | None = None, variant: str = "paper",
                 num_agents: int = 4, num_heads: int = 1, alpha: float | None = None, mlp_ratio: float = 4.0,
                 caaf: bool | None = None, catf: bool | None = None, person_cat_id: int = PERSON_ID):
        self._xclip_cfg = dict(xclip=xclip or {}, freeze_vision=freeze_vision, freeze_text=freeze_text,
                               pretrained=pretrained, context_length=context_length)
        RefAtomNetStreams.__init__(
            self, num_frames, img_size, num_dets, text_dim, context_length, blip2=None, width=width,
            variant=variant, person_cat_id=person_cat_id, num_tokens=num_tokens, num_agents=num_agents,
            num_heads=num_heads, alpha=alpha, mlp_ratio=mlp_ratio, caaf=caaf, catf=catf)

    def build_visual(self, blip2, num_frames: int, img_size: int) -> tuple[int, int]:
        from transformers import XCLIPConfig, XCLIPModel

        opts = self._xclip_cfg
        cfg = dict(opts["xclip"])
        vision = dict(cfg.pop("vision_config", {}) or {})
        vision.setdefault("image_size", img_size)
        vision.setdefault("num_frames", num_frames)
        if vision["image_size"] != img_size or vision["num_frames"] != num_frames:
            raise ValueError(f"refatomnet_xclip: xclip.vision_config image_size/num_frames "
                             f"({vision['image_size']}, {vision['num_frames']}) must match data "
                             f"({img_size}, {num_frames})")
        text = dict(cfg.pop("text_config", {}) or {})
        text.setdefault("max_position_embeddings", max(77, opts["context_length"]))
        self.xclip = XCLIPModel(XCLIPConfig(text_config=text, vision_config=vision, **cfg))
        if opts["pretrained"]:
            load_into(self.xclip, opts["pretrained"], strip_prefixes=("module.", "model."), what="XCLIP checkpoint",
                      expect="a transformers XCLIPModel state dict of this config")
        self.freeze_xclip_vision, self.freeze_xclip_text = opts["freeze_vision"], opts["freeze_text"]
        for p in (self.xclip.vision_model.parameters() if self.freeze_xclip_vision else ()):
            p.requires_grad_(False)
        for p in (self.xclip.text_model.parameters() if self.freeze_xclip_text else ()):
            p.requires_grad_(False)
        # XCLIP's parts used for the ITM-style logits (prompt generator, logit scale, text projection) stay unused
        for mod in (self.xclip.prompts_generator, self.xclip.text_projection):
            for p in mod.parameters():
                p.requires_grad_(False)
        self.xclip.logit_scale.requires_grad_(False)
        self.tokenizer = ClipTokenizer(opts["context_length"])
        grid = (img_size // self.xclip.config.vision_config.patch_size) ** 2
        return self.xclip.config.projection_dim, num_frames + grid

    def encode_visual(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        b, t = video.shape[:2]
        x = self.xclip
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_xclip_vision):
            vis = x.vision_model(pixel_values=video.flatten(0, 1))
        frames = x.mit(x.visual_projection(vis.pooler_output).view(b, t, -1)).last_hidden_state  # (B, T, E)
        patches = x.prompts_visual_layernorm(vis.last_hidden_state[:, 1:]) @ x.prompts_visual_projection
        patches = patches.view(b, t, -1, patches.shape[-1]).mean(dim=1)  # (B, P, E), as XCLIP's img_features
        return torch.cat([frames, patches], dim=1)

    def build_text(self, text_dim: int, max_text_len: int, width: int) -> None:
        tdim = self.xclip.config.text_config.hidden_size
        self.p_rt = nn.Linear(tdim, width)
        self.rt_tokens = TokenMap(1 if self.variant == "released" else max_text_len, self.num_tokens)

    def encode_text(self, batch):
        ids = self.tokenizer(batch["text"]).to(batch["video"].device)
        mask = ids != 0  # open_clip pads with 0
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_xclip_text):
            hid = self.xclip.text_model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        if self.variant == "released":
            return self.p_rt(hid.mean(dim=1, keepdim=True))
        return self.p_rt(hid) * mask.unsqueeze(-1).to(hid.dtype)

