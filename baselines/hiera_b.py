"""Hiera-B (Ryali et al., ICML'23), the video model of the ``hiera-transformer`` package (timm's Hiera is
image-only), with the reference fused in by TextFiLM before pooling (AAL family, paper Sec. 3.2).

Full config: ``hiera_base_16x224``'s arguments (embed 96, 1 head, stages (2, 3, 16, 3), q_stride (1, 2, 2),
mask units (1, 8, 8), patch kernel 3x7x7 stride 2x4x4, separate space/time position embeddings), with
``input_size`` = the config's (num_frames, img_size, img_size); its K400 checkpoint needs 16 x 224.
Spatial tokens (img_size / 4) must be divisible by 2 ** (len(stages) - 1) and by the mask unit.
The library's forward returns the last stage as a (B, T', H', W', C) map with ``return_intermediates``;
TextFiLM's pool replaces Hiera's token mean, then Hiera's own final ``norm`` is applied (so at the first
step the features are exactly the published ``norm(mean(x))``); Hiera's K400 ``head`` is replaced by an
Identity and the shared RAVAR head. ``pretrained=`` loads a local Hiera checkpoint (its ``model_state``).
"""
from __future__ import annotations

import math

from torch import nn

from ravar_bench.encoders.checkpoint import load_into, meta_safe_build
from ravar_bench.model.bases import TextFusedVideoMethod
from ravar_bench.registry import register_method

# hiera-transformer 0.1.4, hiera.hiera_base_16x224 (Hiera's defaults give embed_dim=96, num_heads=1,
# stages=(2, 3, 16, 3), q_pool=3, mask_unit_attn=(True, True, False, False)); written out here.
HIERA_B_16x224 = dict(
    embed_dim=96, num_heads=1, stages=(2, 3, 16, 3), q_pool=3, q_stride=(1, 2, 2), mask_unit_size=(1, 8, 8),
    mask_unit_attn=(True, True, False, False), patch_kernel=(3, 7, 7), patch_stride=(2, 4, 4),
    patch_padding=(1, 3, 3), sep_pos_embed=True, drop_path_rate=0.0,
)


@register_method("hiera_b", family="AAL", paper_name="Hiera-B")
class HieraB(TextFusedVideoMethod):
    channel_dim = -1  # the library's intermediates are (B, T', H', W', C)

    def __init__(self, text_dim: int, num_frames: int, img_size: int, backbone: dict | None = None,
                 pretrained: str | None = None, fusion: dict | None = None, pixel_mean=None, pixel_std=None,
                 backbone_mean=None, backbone_std=None):
        super().__init__(num_frames, img_size, pixel_mean, pixel_std, backbone_mean, backbone_std)
        import hiera

        cfg = {**HIERA_B_16x224, **(backbone or {})}
        ps, n_stages = cfg["patch_stride"], len(cfg["stages"])
        tokens = (num_frames // ps[0], img_size // ps[1], img_size // ps[2])
        div = [q ** (n_stages - 1) for q in cfg["q_stride"]]
        if (num_frames % ps[0] or img_size % ps[1] or any(t % d for t, d in zip(tokens, div))
                or any(t % m for t, m in zip(tokens, cfg["mask_unit_size"]))):
            raise ValueError(
                f"hiera_b: input ({num_frames}, {img_size}, {img_size}) gives tokens {tokens} (patch stride {ps}); "
                f"each must be divisible by q_stride ** (len(stages) - 1) = {div} and by mask_unit_size "
                f"{tuple(cfg['mask_unit_size'])}; e.g. img_size must be a multiple of {ps[1] * math.lcm(div[1], cfg['mask_unit_size'][1])}")
        with meta_safe_build():
            self.backbone = hiera.Hiera(input_size=(num_frames, img_size, img_size), num_classes=1, **cfg)
        channels = self.backbone.norm.normalized_shape[0]  # 768 for Hiera-B
        self.backbone.head = nn.Identity()  # the K400 classifier: replaced by the shared RAVAR head
        if pretrained:
            load_into(self.backbone, pretrained, what="Hiera checkpoint", ignore_prefixes=("head.",),
                      expect="hiera_base_16x224.pth as hiera-transformer publishes it ({'model_state': ...})")
        self.attach_fusion(text_dim, channels, fusion)

    def feature_map(self, clip):
        # The library's own forward; its last intermediate is the final block's output in spatial order,
        # (B, T', H', W', C) (its pooled output, norm(mean(x)), is the un-fused pipeline and is not used).
        return self.backbone(clip, return_intermediates=True)[1][-1]

    def post_pool(self, pooled):
        return self.backbone.norm(pooled)
