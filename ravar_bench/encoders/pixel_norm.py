"""Each backbone sees pixels in the statistics its published weights were trained with.

The loader decodes and normalises every clip once, with the data config's mean / std (``data.mean`` / ``data.std``,
CLIP's); the statistics of a backbone belong to the backbone (its method's config: ``model.backbone_mean`` /
``model.backbone_std``, on the 0-1 pixel scale). :class:`PixelNorm` undoes the data normalisation and applies the
backbone's; it is the identity when the method states no statistics of its own or the same ones (the tiny configs:
one shared normalisation), so nothing is computed there.

The publishers' statistics follow, as their configs state them (0-255 values divided by 255 here).
"""
from __future__ import annotations

import torch
from torch import nn

# ImageNet's, as torchvision / timm and mmaction2's data_preprocessor (mean 123.675, 116.28, 103.53;
# std 58.395, 57.12, 57.375 on 0-255): I3D, VideoMAE V2, the ResNet / DETR / SAM / DarkNet detectors
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Kinetics' one-value statistics of SlowFast / PySlowFast (DATA.MEAN 0.45, DATA.STD 0.225; mmaction2 writes
# 114.75 / 57.375 on 0-255): X3D, MViTv2 and Hiera's video models
KINETICS_MEAN, KINETICS_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
# OpenAI CLIP's (clip/clip.py _transform), also BLIP-2's image processor
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def renormalise(image: torch.Tensor, mean_in, std_in, mean_out, std_out, channel_dim: int = -3) -> torch.Tensor:
    """Re-express an image normalised with (mean_in, std_in) in another model's statistics (e.g. CLIP's -> SAM's).
    ``channel_dim``: where the 3 channels sit (-3: (B, 3, H, W) and (B, T, 3, H, W) alike)."""
    shape = [1] * image.dim()
    shape[channel_dim] = -1

    def v(x):  # made on the input's device: a module built on the meta device still renormalises real frames
        return torch.as_tensor(x, dtype=image.dtype, device=image.device).view(shape)

    return (image * v(std_in) + v(mean_in) - v(mean_out)) / v(std_out)


def _stats(name: str, value) -> tuple[float, float, float] | None:
    if value is None:
        return None
    value = tuple(float(x) for x in value)
    if len(value) != 3:
        raise ValueError(f"{name} must be 3 numbers (R, G, B), got {value}")
    return value


class PixelNorm(nn.Module):
    """Frames normalised with the data's (mean, std) -> normalised with the backbone's. No parameters, no buffers
    (nothing enters a state dict); the identity when the backbone's statistics are None or the data's own."""

    def __init__(self, data_mean=None, data_std=None, backbone_mean=None, backbone_std=None, what: str = "model"):
        super().__init__()
        self.data = (_stats(f"{what}: pixel_mean", data_mean), _stats(f"{what}: pixel_std", data_std))
        self.backbone = (_stats(f"{what}: backbone_mean", backbone_mean),
                         _stats(f"{what}: backbone_std", backbone_std))
        if (self.backbone[0] is None) != (self.backbone[1] is None):
            raise ValueError(f"{what}: set both model.backbone_mean and model.backbone_std, or neither")
        if self.backbone[0] is not None and None in self.data:
            raise ValueError(f"{what}: model.backbone_mean is set but the data's mean / std are not known "
                             f"(data.mean / data.std)")
        self.identity = self.backbone[0] is None or self.backbone == self.data

    def forward(self, x: torch.Tensor, channel_dim: int = -3) -> torch.Tensor:
        if self.identity:
            return x
        return renormalise(x, *self.data, *self.backbone, channel_dim=channel_dim)

    def extra_repr(self) -> str:
        return "identity" if self.identity else f"data {self.data} -> backbone {self.backbone}"
