"""The method base classes a family shares (the method contract itself is :mod:`ravar_bench.method`).

:class:`TextFusedVideoMethod` is the AAL adaptation the five atomic-action-localisation baselines share (paper
Sec. 3.2): a video backbone from the field's libraries, the reference fused by
:class:`ravar_bench.encoders.fusion.TextFiLM` into its last feature map, pooled. A method file only says how to
build its backbone and which feature map to read (``feature_map``) and, where the published model normalises after
pooling, ``post_pool``. The clip is renormalised to the backbone's published pixel statistics first
(``backbone_mean`` / ``backbone_std``: :class:`ravar_bench.encoders.pixel_norm.PixelNorm`).
"""
from __future__ import annotations

import math

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from ..encoders.fusion import TextFiLM
from ..encoders.pixel_norm import PixelNorm
from ..method import Method


class TextFusedVideoMethod(Method):
    """``self.backbone`` (set by the subclass) -> feature map -> TextFiLM pool with the reference -> (B, C)."""

    needs = frozenset({"video", "text_emb"})
    channel_dim = 1  # where the channels sit in feature_map's output ((B, C, T, H, W) by default)

    def __init__(self, num_frames: int, img_size: int, pixel_mean=None, pixel_std=None, backbone_mean=None,
                 backbone_std=None):
        super().__init__()
        self.num_frames, self.img_size = num_frames, img_size
        # the clip arrives in the data's statistics (pixel_*); the backbone reads it in its own (backbone_*)
        self.pixel_norm = PixelNorm(pixel_mean, pixel_std, backbone_mean, backbone_std, what=type(self).__name__)

    def attach_fusion(self, text_dim: int, channels: int, fusion: dict | None) -> None:
        self.fusion = TextFiLM(text_dim, channels, **(fusion or {}))
        self.feat_dim = channels
        self.map_dim = channels  # the FiLM-modulated last map, averaged over time, for the shared head
        if self.fusion.attn_pool and self.map_positions() == 1:
            # one position (I3D on RavarModel's 32 px actor crops: 1x1x1): the pool's weight is the constant 1,
            # so its query can never learn; frozen, so that it is not counted as trained
            self.fusion.query.requires_grad_(False)

    def map_positions(self) -> int:
        """How many positions :meth:`feature_map` gives at this clip size. Shape inference with torch's fake
        tensors (what torch.export uses): no memory, no arithmetic, and it works on a meta-device build."""
        device = next(self.backbone.parameters()).device
        training = self.training
        self.eval()  # no BatchNorm statistics are touched
        try:
            with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
                shape = self.feature_map(torch.empty(1, 3, self.num_frames, self.img_size, self.img_size,
                                                     device=device)).shape
        finally:
            self.train(training)
        dims = list(shape[1:])
        dims.pop(self.channel_dim if self.channel_dim < 0 else self.channel_dim - 1)
        return math.prod(int(d) for d in dims)

    def feature_map(self, clip: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> the backbone's last feature map."""
        return self.backbone(clip)

    def post_pool(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        x = self.feature_map(self.pixel_norm(video).transpose(1, 2))  # (B, T, 3, H, W) -> (B, 3, T, H, W)
        pooled, fmap = self.fusion.pool(x, batch["text_emb"], channel_dim=self.channel_dim, return_map=True)
        self.spatial_map = fmap.mean(dim=2)  # (B, C, T', H', W') -> (B, C, H', W')
        return self.post_pool(pooled)
