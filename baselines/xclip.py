"""X-CLIP (VTR family): multi-grained video-text matching, adapted to RAVAR (paper Sec. 3.2).

Which X-CLIP. The paper's row cites Ma et al., "X-CLIP: End-to-End Multi-grained Contrastive Learning for
Video-Text Retrieval" (ACM MM'22): CLIP ViT-B/32 towers, CLIP4Clip's seqTransf temporal transformer, and
four contrasts -- video-sentence, video-word, sentence-frame, frame-word -- whose fine/cross-grained
similarity matrices are aggregated by "attention over similarity matrix" (AOSM: a softmax at temperature
0.01 over frames or words, mixed by learnable square matrices initialised to the identity).
transformers' ``XCLIPModel`` is a different model of the same name (Ni et al., ECCV'22: cross-frame
communication, multi-frame integration transformer, video-specific prompts; video *recognition*).

So two interchangeable towers feed the same multi-grained head:
- ``towers="clip"`` (default, the cited paper): open_clip CLIP towers + seqTransf, word features from the
  text tower's tokens, frame features straight from CLIP (``use_original_clip_for_frame_features``).
- ``towers="hf_xclip"``: transformers' ``XCLIPModel`` (``xclip=`` its config kwargs, ``xclip_pretrained=`` a
  local ``save_pretrained`` folder): frames = projected per-frame CLS, video = its MIT output, sentence = the
  EOT embedding plus its video-specific prompt, words = projected token states.

RAVAR adaptation: each of the four X-CLIP logits is a sum over embedding dimensions of an AOSM-weighted
product; we keep those products as vectors (each sums to its logit) and hand
[video, sentence, video-sentence, video-word, sentence-frame, frame-word] to the shared head.
"""
from __future__ import annotations

import torch
from torch import nn

from ravar_bench.encoders.clip import ClipTokenizer, build_clip, clip_pair, encode_text_tokens
from ravar_bench.encoders.text_video import ClipTemporalTransformer, check_references, load_hf_local
from ravar_bench.method import Method
from ravar_bench.registry import register_method

NORM = nn.functional.normalize


class MultiGrainedAOSM(nn.Module):
    """X-CLIP's four contrasts with AOSM, for matched (video i, text i) pairs, returned as vectors.

    Written by hand because no library ships it (it is X-CLIP's own head, ~10 einsums); parameters as in
    the official code: ``global_mat_weight`` / ``local_mat_weight`` (E x E), ``word_logit_weight``,
    ``word_mat_weight``, ``word_mat_weight2`` (L x L), ``frame_logit_weight``, ``frame_mat_weight``,
    ``frame_mat_weight2`` (T x T), all initialised to the identity. Padding words are masked out of every
    softmax (the official code leaves them in).
    """

    def __init__(self, dim: int, num_words: int, num_frames: int, temperature: float = 1e-2):
        super().__init__()
        eye = torch.eye
        self.global_mat_weight = nn.Parameter(eye(dim))
        self.local_mat_weight = nn.Parameter(eye(dim))
        self.word_logit_weight = nn.Parameter(eye(num_words))
        self.word_mat_weight = nn.Parameter(eye(num_words))
        self.word_mat_weight2 = nn.Parameter(eye(num_words))
        self.frame_logit_weight = nn.Parameter(eye(num_frames))
        self.frame_mat_weight = nn.Parameter(eye(num_frames))
        self.frame_mat_weight2 = nn.Parameter(eye(num_frames))
        self.tau = temperature

    def _soft(self, sim, mask, dim):
        return torch.softmax((sim / self.tau).masked_fill(~mask, float("-inf")), dim=dim)

    def forward(self, video, sentence, frames, words, word_mask):
        """video (B, E), sentence (B, E), frames (B, T, E), words (B, L, E), all L2-normalised;
        word_mask (B, L) bool. Returns (B, 4E); summing each E-block gives X-CLIP's logit / logit_scale."""
        b, t, _ = frames.shape
        wm = word_mask
        fm = torch.ones(b, t, dtype=torch.bool, device=frames.device)
        # video-sentence (coarse): s^T W_g v
        vs = (sentence @ self.global_mat_weight) * video
        # video-word (cross): words weighted by AOSM over their similarity to the video
        sim_wv = torch.einsum("bld,bd->bl", words, video)
        a = self._soft(sim_wv, wm, 1) @ self.word_logit_weight
        vw = torch.einsum("bl,bld->bd", a * wm, words) * video
        # sentence-frame (cross): frames weighted by AOSM over their similarity to the sentence
        sim_sf = torch.einsum("bd,btd->bt", sentence, frames)
        c = self._soft(sim_sf, fm, 1) @ self.frame_logit_weight
        sf = sentence * torch.einsum("bt,btd->bd", c, frames)
        # frame-word (fine): S_jk = (w_j W_l) . f_k, AOSM over words then frames, and over frames then words
        wl = words @ self.local_mat_weight                                  # (B, L, E)
        s = torch.einsum("bld,btd->blt", wl, frames)                        # (B, L, T)
        m2 = wm[:, :, None].expand_as(s)
        alpha = (self._soft(s, m2, 1).transpose(1, 2) @ self.word_mat_weight).transpose(1, 2) * wm[:, :, None]
        word_level = (alpha * s).sum(1)                                     # (B, T): each frame's word-pooled score
        beta = self._soft(word_level, fm, 1) @ self.frame_mat_weight2       # (B, T)
        gamma = torch.softmax(s / self.tau, dim=2) @ self.frame_mat_weight  # (B, L, T); every frame is valid
        frame_level = (gamma * s).sum(2)                                    # (B, L): each word's frame-pooled score
        delta = (self._soft(frame_level, wm, 1) @ self.word_mat_weight2) * wm  # (B, L)
        w_s2f = alpha * beta[:, None, :]                                    # weight of pair (j, k), sentence->frame
        w_v2w = gamma * delta[:, :, None]                                   # weight of pair (j, k), video->word
        pair_w = 0.5 * (w_s2f + w_v2w)
        fw = torch.einsum("blt,bld,btd->bd", pair_w, wl, frames)
        return torch.cat([vs, vw, sf, fw], dim=-1)


@register_method("xclip", family="VTR", paper_name="XCLIP")
class XCLIP(Method):
    needs = frozenset({"video", "text"})

    def __init__(self, num_frames: int, img_size: int, towers: str = "clip", clip: dict | None = None,
                 temporal_layers: int = 4, context_length: int = 32, xclip: dict | None = None,
                 xclip_pretrained: str | None = None, aosm_temperature: float = 1e-2):
        super().__init__()
        if towers not in ("clip", "hf_xclip"):
            raise ValueError(f"xclip: towers must be 'clip' (Ma et al. 2022) or 'hf_xclip' (transformers' XCLIPModel), "
                             f"got {towers!r}")
        self.towers = towers
        self.num_frames, self.img_size, self.context_length = num_frames, img_size, context_length
        if towers == "clip":
            if clip is None:
                raise ValueError("xclip: towers='clip' needs model.clip (open_clip tower config)")
            self.clip = build_clip(**clip)
            self.clip.logit_scale.requires_grad_(False)  # CLIP's contrastive temperature: the AOSM has its own
            if self.clip.visual.image_size[0] != img_size:
                raise ValueError(f"xclip: the CLIP vision tower expects {self.clip.visual.image_size[0]} px but "
                                 f"data.img_size={img_size}")
            if context_length > self.clip.positional_embedding.shape[0]:
                raise ValueError(f"xclip: context_length={context_length} exceeds the text tower's "
                                 f"{self.clip.positional_embedding.shape[0]} positions")
            e = self.clip.text_projection.shape[1]
            self.seq = ClipTemporalTransformer(e, temporal_layers, max_frames=max(num_frames, 77))
        else:
            self.xclip = self._build_hf(xclip or {}, xclip_pretrained, num_frames, img_size)
            e = self.xclip.config.projection_dim
        self.aosm = MultiGrainedAOSM(e, context_length, num_frames, aosm_temperature)
        self.tokenizer = ClipTokenizer(context_length)  # open_clip's BPE: CLIP's (and XCLIPModel's) vocabulary
        self.feat_dim = 6 * e

    @staticmethod
    def _build_hf(cfg: dict, pretrained: str | None, num_frames: int, img_size: int):
        from transformers import XCLIPConfig, XCLIPModel

        if pretrained:
            model = load_hf_local(XCLIPModel, pretrained, "xclip: xclip_pretrained")
        else:
            cfg = dict(cfg)
            vision = dict(cfg.pop("vision_config", {}))
            vision.setdefault("num_frames", num_frames)
            vision.setdefault("image_size", img_size)
            model = XCLIPModel(XCLIPConfig(vision_config=vision, text_config=cfg.pop("text_config", {}), **cfg))
        c = model.config
        if c.vision_config.num_frames != num_frames or c.vision_config.image_size != img_size:
            raise ValueError(f"xclip: XCLIPModel built for {c.vision_config.num_frames} frames at "
                             f"{c.vision_config.image_size} px, but data gives {num_frames} at {img_size}")
        if c.projection_dim != c.text_config.hidden_size or c.projection_dim != c.vision_config.mit_hidden_size:
            raise ValueError(f"xclip: XCLIPModel needs projection_dim ({c.projection_dim}) == text hidden size "
                             f"({c.text_config.hidden_size}) == vision mit_hidden_size "
                             f"({c.vision_config.mit_hidden_size})")
        return model

    # ----------------------------------------------------------------- towers
    def _clip_towers(self, video, ids):
        b, t = video.shape[:2]
        raw = self.clip.encode_image(video.flatten(0, 1)).view(b, t, -1)
        frames = NORM(raw, dim=-1)                       # fine-grained frames: CLIP's own (before seqTransf)
        video_feat = NORM(NORM(self.seq(raw), dim=-1).mean(1), dim=-1)
        sentence, words, mask = encode_text_tokens(self.clip, ids, normalize=True)
        return video_feat, sentence, frames, words, mask

    def _hf_towers(self, video, ids):
        m = self.xclip
        b, t = video.shape[:2]
        vis = m.vision_model(pixel_values=video.flatten(0, 1))
        cls = m.visual_projection(vis.pooler_output).view(b, t, -1)
        video_feat = m.mit(cls).pooler_output
        img = m.prompts_visual_layernorm(vis.last_hidden_state[:, 1:]) @ m.prompts_visual_projection
        img = img.view(b, t, -1, img.shape[-1]).mean(1)
        mask = torch.arange(ids.shape[1], device=ids.device)[None] <= ids.argmax(-1, keepdim=True)
        txt = m.text_model(input_ids=ids, attention_mask=mask.long())
        sentence = m.text_projection(txt.pooler_output)
        sentence = sentence + m.prompts_generator(sentence[:, None], img)[:, 0]  # video-specific prompt
        words = m.text_projection(txt.last_hidden_state)
        return NORM(video_feat, dim=-1), NORM(sentence, dim=-1), NORM(cls, dim=-1), NORM(words, dim=-1), mask

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        ids = self.tokenizer(check_references(batch["text"], self.method_name)).to(video.device)
        towers = self._clip_towers if self.towers == "clip" else self._hf_towers
        v, s, frames, words, mask = towers(video, ids)
        return torch.cat([v, s, self.aosm(v, s, frames, words, mask)], dim=-1)

    def contrastive_pair(self, batch):
        if self.towers != "clip":  # XCLIPModel's towers were pretrained by their publishers, not here
            return None
        return clip_pair(self.clip, self.tokenizer, batch["video"], batch["text"])
