"""I3D (Carreira & Zisserman, CVPR'17): ResNet3d-50 inflated, mmaction2's I3D backbone, with the reference
fused in by TextFiLM before pooling (AAL family, paper Sec. 3.2).

The backbone is mmaction2's ``ResNet3d`` exactly as its ``i3d_r50`` model config builds it (configs/_base_/
models/i3d_r50.py: conv1 5x7x7 with temporal stride 2, pool1 temporal stride 2, the 3x1x1 inflation pattern),
except that no 2D ImageNet weights are fetched (``pretrained=None``): ``pretrained=`` here loads a local
mmaction2 I3D checkpoint. mmaction's I3DHead (global average pool + Linear(400)) is replaced by TextFiLM's
pool and the shared RAVAR head.
"""
from __future__ import annotations

from ravar_bench.encoders.aal import build_mmaction_backbone
from ravar_bench.model.bases import TextFusedVideoMethod
from ravar_bench.registry import register_method

# mmaction2 1.2.0, configs/_base_/models/i3d_r50.py (the backbone of i3d_imagenet-pretrained-r50_8xb8-32x2x1).
I3D_R50 = dict(
    type="ResNet3d",
    depth=50,
    pretrained=None,       # mmaction's config says 'torchvision://resnet50' (a download): never here
    pretrained2d=False,
    conv1_kernel=(5, 7, 7),
    conv1_stride_t=2,
    pool1_stride_t=2,
    conv_cfg=dict(type="Conv3d"),
    norm_eval=False,
    inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
    zero_init_residual=False,
)


@register_method("i3d", family="AAL", paper_name="I3D")
class I3D(TextFusedVideoMethod):
    def __init__(self, text_dim: int, num_frames: int, img_size: int, backbone: dict | None = None,
                 pretrained: str | None = None, fusion: dict | None = None, pixel_mean=None, pixel_std=None,
                 backbone_mean=None, backbone_std=None):
        super().__init__(num_frames, img_size, pixel_mean, pixel_std, backbone_mean, backbone_std)
        # mmaction's own init (Kaiming convs, BN = 1/0); its output is (B, C, T', H', W')
        self.backbone = build_mmaction_backbone({**I3D_R50, **(backbone or {})}, pretrained,
                                                "I3D (mmaction2) checkpoint")
        self.attach_fusion(text_dim, self.backbone.feat_dim, fusion)  # 2048 channels for R50
