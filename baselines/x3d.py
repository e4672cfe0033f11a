"""X3D (Feichtenhofer, CVPR'20) from mmaction2, with the reference fused in by TextFiLM before pooling
(AAL family, paper Sec. 3.2).

The backbone is mmaction2's ``X3D``; the full config is X3D-M (gamma_w=1, gamma_b=2.25, gamma_d=2.2, as
mmaction2's x3d_m_16x5x1 Kinetics-400 config). ``pretrained=`` loads a local mmaction2 X3D checkpoint.
mmaction's X3DHead (pool -> fc1 432->2048 -> fc2 400) is replaced by TextFiLM's pool and the shared RAVAR head.
"""
from __future__ import annotations

from ravar_bench.encoders.checkpoint import load_into, mmengine_init_weights
from ravar_bench.encoders.fusion import TextFiLM
from ravar_bench.encoders.mmaction_compat import mmaction_models
from ravar_bench.method import Method
from ravar_bench.registry import register_method

X3D_M = dict(type="X3D", gamma_w=1, gamma_b=2.25, gamma_d=2.2)  # mmaction2 configs/_base_/models/x3d.py

MMACTION_NON_BACKBONE = ("cls_head.", "data_preprocessor.")


@register_method("x3d", family="AAL", paper_name="X3D")
class X3DMethod(Method):
    needs = frozenset({"video", "text_emb"})

    def __init__(self, text_dim: int, num_frames: int, img_size: int, backbone: dict | None = None,
                 pretrained: str | None = None, fusion: dict | None = None):
        super().__init__()
        mmaction_models()
        from mmaction.registry import MODELS

        self.backbone = MODELS.build({**X3D_M, **(backbone or {})})
        mmengine_init_weights(self.backbone)  # mmaction's own init (Kaiming convs, zero-init last BN of each block)
        if pretrained:
            load_into(self.backbone, pretrained, what="X3D (mmaction2) checkpoint", ignore_prefixes=MMACTION_NON_BACKBONE)
        channels = self.backbone.feat_dim  # 432 for X3D-M (conv5 output)
        self.fusion = TextFiLM(text_dim, channels, **(fusion or {}))
        self.num_frames, self.img_size = num_frames, img_size
        self.feat_dim = channels

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        x = self.backbone(video.transpose(1, 2))  # (B, T, 3, H, W) -> (B, 3, T, H, W) -> (B, C, T, H', W')
        return self.fusion.pool(x, batch["text_emb"], channel_dim=1)
