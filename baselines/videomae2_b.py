"""VideoMAE V2 ViT-B (Wang et al., CVPR'23) from mmaction2's ``VisionTransformer`` (the backbone of its
VideoMAE / VideoMAE V2 configs), with the reference fused in by TextFiLM before pooling (AAL family).

Full config: ViT-B/16, tubelet 2, 12 blocks of width 768 with 12 heads, fixed sine-cosine position
table, mean pooling + fc_norm, as mmaction2's vit-base-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_kinetics-400
config. The position table is sized by the clip (num_frames, img_size), so that K400 checkpoint needs
16 frames. The backbone returns its token map (``return_feat_map=True``); TextFiLM's pool replaces the
plain token mean, and the backbone's own ``fc_norm`` is applied to the pooled vector afterwards, so that at
the first step (FiLM = identity, uniform pool) the features are exactly the published ``fc_norm(mean(x))``.
mmaction's TimeSformerHead (Linear(400)) is replaced by the shared RAVAR head.
"""
from __future__ import annotations

from ravar_bench.encoders.aal import build_mmaction_backbone, opengvlab_videomae2_key
from ravar_bench.model.bases import TextFusedVideoMethod
from ravar_bench.registry import register_method

VIT_B = dict(type="VisionTransformer", patch_size=16, embed_dims=768, depth=12, num_heads=12, mlp_ratio=4,
             qkv_bias=True, tubelet_size=2, norm_cfg=dict(type="LN", eps=1e-6))


@register_method("videomae2_b", family="AAL", paper_name="VideoMAE2-B")
class VideoMAE2B(TextFusedVideoMethod):
    def __init__(self, text_dim: int, num_frames: int, img_size: int, backbone: dict | None = None,
                 pretrained: str | None = None, fusion: dict | None = None, pixel_mean=None, pixel_std=None,
                 backbone_mean=None, backbone_std=None):
        super().__init__(num_frames, img_size, pixel_mean, pixel_std, backbone_mean, backbone_std)
        cfg = {**VIT_B, "num_frames": num_frames, "img_size": img_size, **(backbone or {})}
        cfg["return_feat_map"] = True  # (B, C, T', h, w): the map TextFiLM modulates and pools
        if num_frames % cfg["tubelet_size"] or img_size % cfg["patch_size"]:
            raise ValueError(f"videomae2_b: num_frames={num_frames} must be a multiple of tubelet_size="
                             f"{cfg['tubelet_size']} and img_size={img_size} of patch_size={cfg['patch_size']}")
        # mmaction's own init (truncated normal Linear, LayerNorm = 1/0); its self.norm is Identity here
        # mmaction2's conversion or OpenGVLab's own release (vit_b_k710_dl_from_giant.pth: {'module': ...})
        self.backbone = build_mmaction_backbone(cfg, pretrained, "VideoMAE V2 checkpoint", meta_safe=True,
                                                key_map=opengvlab_videomae2_key)
        self.attach_fusion(text_dim, cfg["embed_dims"], fusion)

    def post_pool(self, pooled):
        if self.backbone.fc_norm is not None:  # use_mean_pooling=True (the published setting)
            pooled = self.backbone.fc_norm(pooled)
        return pooled
