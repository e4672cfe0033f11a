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

from ravar_bench.encoders.checkpoint import load_into, meta_safe_build, mmengine_init_weights
from ravar_bench.encoders.fusion import TextFiLM
from ravar_bench.encoders.mmaction_compat import mmaction_models
from ravar_bench.method import Method
from ravar_bench.registry import register_method

VIT_B = dict(type="VisionTransformer", patch_size=16, embed_dims=768, depth=12, num_heads=12, mlp_ratio=4,
             qkv_bias=True, tubelet_size=2, norm_cfg=dict(type="LN", eps=1e-6))

MMACTION_NON_BACKBONE = ("cls_head.", "data_preprocessor.")


@register_method("videomae2_b", family="AAL", paper_name="VideoMAE2-B")
class VideoMAE2B(Method):
    needs = frozenset({"video", "text_emb"})

    def __init__(self, text_dim: int, num_frames: int, img_size: int, backbone: dict | None = None,
                 pretrained: str | None = None, fusion: dict | None = None):
        super().__init__()
        mmaction_models()
        from mmaction.registry import MODELS

        cfg = {**VIT_B, "num_frames": num_frames, "img_size": img_size, **(backbone or {})}
        cfg["return_feat_map"] = True  # (B, C, T', h, w): the map TextFiLM modulates and pools
        if num_frames % cfg["tubelet_size"] or img_size % cfg["patch_size"]:
            raise ValueError(f"videomae2_b: num_frames={num_frames} must be a multiple of tubelet_size="
                             f"{cfg['tubelet_size']} and img_size={img_size} of patch_size={cfg['patch_size']}")
        with meta_safe_build():
            self.backbone = MODELS.build(cfg)
        mmengine_init_weights(self.backbone)  # mmaction's own init (truncated normal Linear, LayerNorm = 1/0)
        if pretrained:
            load_into(self.backbone, pretrained, what="VideoMAE V2 (mmaction2) checkpoint",
                      ignore_prefixes=MMACTION_NON_BACKBONE)
        channels = cfg["embed_dims"]
        self.fusion = TextFiLM(text_dim, channels, **(fusion or {}))
        self.num_frames, self.img_size = num_frames, img_size
        self.feat_dim = channels

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        x = self.backbone(video.transpose(1, 2))  # (B, C, T/2, H/16, W/16); its self.norm is Identity here
        pooled = self.fusion.pool(x, batch["text_emb"], channel_dim=1)
        if self.backbone.fc_norm is not None:  # use_mean_pooling=True (the published setting)
            pooled = self.backbone.fc_norm(pooled)
        return pooled
