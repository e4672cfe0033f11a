"""X3D (Feichtenhofer, CVPR'20) from mmaction2, with the reference fused in by TextFiLM (AAL family)."""
from __future__ import annotations

from torch import nn

from ravar_bench.encoders.checkpoint import load_into
from ravar_bench.encoders.fusion import TextFiLM
from ravar_bench.encoders.mmaction_compat import mmaction_models
from ravar_bench.method import Method
from ravar_bench.registry import register_method


@register_method("x3d", family="AAL", paper_name="X3D")
class X3DMethod(Method):
    needs = frozenset({"video", "text_emb"})

    def __init__(self, text_dim: int, num_frames: int, img_size: int, backbone: dict | None = None,
                 pretrained: str | None = None):
        super().__init__()
        mmaction_models()
        from mmaction.registry import MODELS

        cfg = dict(type="X3D", gamma_w=1, gamma_b=2.25, gamma_d=2.2)  # X3D-M (mmaction2's x3d_m config)
        cfg.update(backbone or {})
        self.backbone = MODELS.build(cfg)
        if pretrained:
            load_into(self.backbone, pretrained, what="X3D checkpoint")
        channels = self.backbone.feat_dim
        self.fusion = TextFiLM(text_dim, channels)
        self.num_frames, self.img_size = num_frames, img_size
        self.feat_dim = channels

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        x = self.backbone(video.transpose(1, 2))  # (B, T, 3, H, W) -> (B, 3, T, H, W)
        x = self.fusion(x, batch["text_emb"], channel_dim=1)
        return x.mean(dim=(2, 3, 4))
