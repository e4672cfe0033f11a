"""MViTv2-B (Li et al., CVPR'22) from mmaction2's ``MViT``, with the reference fused in by TextFiLM before
pooling (AAL family, paper Sec. 3.2).

Full config: ``arch='base'`` (24 blocks, width 96 -> 768, downscale at blocks 2, 5, 21), relative position
embeddings and residual pooling, as mmaction2's mvit-base-p244_32x3x1_kinetics400 config (converted from
the SlowFast release). ``temporal_size`` / ``spatial_size`` follow the config's clip (num_frames, img_size):
the relative-position tables are sized by them, so a K400 32x3 checkpoint needs 32 frames at 224 px.
The backbone returns the last stage's patch tokens as a (B, 768, T', H', W') map (``output_cls_token=False``;
the class token still takes part in attention); mmaction's MViTHead (class token -> Linear(400)) is replaced
by TextFiLM's pool over that map and the shared RAVAR head.
"""
from __future__ import annotations

from ravar_bench.encoders.aal import build_mmaction_backbone
from ravar_bench.model.bases import TextFusedVideoMethod
from ravar_bench.registry import register_method

MVIT_B = dict(type="MViT", arch="base", drop_path_rate=0.3)  # mmaction2 mvit-base-p244_32x3x1_kinetics400


@register_method("mvitv2_b", family="AAL", paper_name="MViTv2-B")
class MViTv2B(TextFusedVideoMethod):
    def __init__(self, text_dim: int, num_frames: int, img_size: int, backbone: dict | None = None,
                 pretrained: str | None = None, fusion: dict | None = None, pixel_mean=None, pixel_std=None,
                 backbone_mean=None, backbone_std=None):
        super().__init__(num_frames, img_size, pixel_mean, pixel_std, backbone_mean, backbone_std)
        cfg = {**MVIT_B, "temporal_size": num_frames, "spatial_size": img_size, **(backbone or {})}
        cfg["output_cls_token"] = False  # our pooling reads the patch-token map, not the class token
        cfg["out_scales"] = -1
        # mmaction's own init (truncated normal, LayerNorm = 1/0.02)
        self.backbone = build_mmaction_backbone(cfg, pretrained, "MViTv2 (mmaction2) checkpoint")
        last_norm = getattr(self.backbone, f"norm{self.backbone.num_scales - 1}")  # the final stage's LayerNorm
        self.attach_fusion(text_dim, last_norm.normalized_shape[0], fusion)  # 96 * 2^3 = 768 for B

    def feature_map(self, clip):
        return self.backbone(clip)[-1]  # last scale: (B, C, T', H', W') after the final norm
