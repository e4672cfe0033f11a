"""X3D (Feichtenhofer, CVPR'20) from mmaction2, with the reference fused in by TextFiLM before pooling
(AAL family, paper Sec. 3.2).

The backbone is mmaction2's ``X3D``; the full config is X3D-M (gamma_w=1, gamma_b=2.25, gamma_d=2.2, as
mmaction2's x3d_m_16x5x1 Kinetics-400 config). ``pretrained=`` loads a local mmaction2 X3D checkpoint.
mmaction's X3DHead (pool -> fc1 432->2048 -> fc2 400) is replaced by TextFiLM's pool and the shared RAVAR head.
"""
from __future__ import annotations

from ravar_bench.encoders.aal import build_mmaction_backbone
from ravar_bench.model.bases import TextFusedVideoMethod
from ravar_bench.registry import register_method

X3D_M = dict(type="X3D", gamma_w=1, gamma_b=2.25, gamma_d=2.2)  # mmaction2 configs/_base_/models/x3d.py


@register_method("x3d", family="AAL", paper_name="X3D")
class X3D(TextFusedVideoMethod):
    def __init__(self, text_dim: int, num_frames: int, img_size: int, backbone: dict | None = None,
                 pretrained: str | None = None, fusion: dict | None = None, pixel_mean=None, pixel_std=None,
                 backbone_mean=None, backbone_std=None):
        super().__init__(num_frames, img_size, pixel_mean, pixel_std, backbone_mean, backbone_std)
        # mmaction's own init (Kaiming convs, zero-init last BN of each block); output (B, C, T, H', W')
        self.backbone = build_mmaction_backbone({**X3D_M, **(backbone or {})}, pretrained,
                                                "X3D (mmaction2) checkpoint")
        self.attach_fusion(text_dim, self.backbone.feat_dim, fusion)  # 432 channels for X3D-M (conv5 output)
