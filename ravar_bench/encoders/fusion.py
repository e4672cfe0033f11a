"""The one text-fusion module the AAL baselines share (paper Sec. 3.2: the reference embedding is
integrated into the visual branch of an action-recognition backbone).

Choice: FiLM (feature-wise linear modulation, Perez et al. AAAI'18) of the backbone's last feature map,
before pooling: ``x * (1 + gamma(t)) + beta(t)`` per channel. Why FiLM over adding the text to the
tokens: it applies unchanged to CNN maps (I3D, X3D: (B, C, T, H, W)) and transformer tokens
(MViTv2, ViT, Hiera: (B, N, C)), so the five methods get exactly the same adaptation, and the
multiplicative term lets the sentence re-weight which spatial positions survive pooling (one person's
colours vs another's), which an additive bias alone cannot. gamma/beta start at zero so a pretrained
backbone's features pass through unchanged at the first step.
"""
from __future__ import annotations

import torch
from torch import nn


class TextFiLM(nn.Module):
    def __init__(self, text_dim: int, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or channels
        self.proj = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, 2 * channels))
        nn.init.zeros_(self.proj[-1].weight)
        nn.init.zeros_(self.proj[-1].bias)
        self.channels = channels

    def forward(self, feats: torch.Tensor, text_emb: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
        """``feats``: (B, C, ...) with ``channel_dim=1`` or (B, N, C) with ``channel_dim=-1``."""
        if feats.shape[channel_dim] != self.channels:
            raise ValueError(f"TextFiLM built for {self.channels} channels, got feature map {tuple(feats.shape)}")
        gamma, beta = self.proj(text_emb).chunk(2, dim=-1)
        shape = [feats.shape[0]] + [1] * (feats.dim() - 1)
        shape[channel_dim] = self.channels
        return feats * (1 + gamma.view(shape)) + beta.view(shape)


def masked_pool(feats: torch.Tensor, dims) -> torch.Tensor:
    """Global average pooling over ``dims`` (kept here so every AAL method pools the same way)."""
    return feats.mean(dim=dims)
