"""The one text-fusion module the AAL baselines share (paper Sec. 3.2: the reference embedding is
integrated into the visual branch of an action-recognition backbone).

Choice: FiLM (feature-wise linear modulation, Perez et al. AAAI'18) of the backbone's last feature map,
before pooling: ``x * (1 + gamma(t)) + beta(t)`` per channel. Why FiLM over adding the text to the
tokens: it applies unchanged to CNN maps (I3D, X3D: (B, C, T, H, W)) and transformer tokens
(MViTv2, ViT, Hiera: (B, N, C)), so the five methods get exactly the same adaptation, and the
multiplicative term lets the sentence re-weight which spatial positions survive pooling (one person's
colours vs another's), which an additive bias alone cannot. gamma/beta start at zero so a pretrained
backbone's features pass through unchanged at the first step.

Pooling (:meth:`TextFiLM.pool`). A per-channel FiLM followed by a plain global average commutes with the
average (``mean(x * (1 + g) + b) == mean(x) * (1 + g) + b``), so on its own it could not re-weight
positions as argued above: it would only rescale the already pooled vector. The pooling is therefore a
text-queried attention pool over the modulated positions, ``softmax_p(<LN(x'_p), q(t)> / sqrt(C))``; the
query ``q`` starts at zero, so at the first step the weights are uniform and the pool is exactly the
backbone's own global average. Together: FiLM chooses *which channels* (attributes) matter for this
sentence, the attention pool *where* they are. Both parts are the same for all five AAL methods.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class TextFiLM(nn.Module):
    def __init__(self, text_dim: int, channels: int, hidden: int | None = None, attn_pool: bool = True):
        super().__init__()
        hidden = hidden or channels
        self.proj = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, 2 * channels))
        nn.init.zeros_(self.proj[-1].weight)
        nn.init.zeros_(self.proj[-1].bias)
        self.attn_pool = attn_pool
        if attn_pool:
            self.query = nn.Linear(text_dim, channels)
            nn.init.zeros_(self.query.weight)  # uniform weights at the start = the backbone's global average
            nn.init.zeros_(self.query.bias)
        self.text_dim = text_dim
        self.channels = channels

    def _check_text(self, text_emb: torch.Tensor, batch: int) -> None:
        if text_emb.dim() != 2 or text_emb.shape[0] != batch or text_emb.shape[1] != self.text_dim:
            raise ValueError(f"TextFiLM built for text embeddings (B={batch}, {self.text_dim}), got "
                             f"{tuple(text_emb.shape)}; text_encoder.dim in the config must match the method")

    def forward(self, feats: torch.Tensor, text_emb: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
        """``feats``: (B, C, ...) with ``channel_dim=1`` or (B, N, C) with ``channel_dim=-1``."""
        if feats.shape[channel_dim] != self.channels:
            raise ValueError(f"TextFiLM built for {self.channels} channels, got feature map {tuple(feats.shape)}")
        self._check_text(text_emb, feats.shape[0])
        gamma, beta = self.proj(text_emb).chunk(2, dim=-1)
        shape = [feats.shape[0]] + [1] * (feats.dim() - 1)
        shape[channel_dim] = self.channels
        return feats * (1 + gamma.view(shape)) + beta.view(shape)

    def pool(self, feats: torch.Tensor, text_emb: torch.Tensor, channel_dim: int = 1, return_map: bool = False):
        """FiLM, then the text-queried attention pool over every non-channel position -> (B, C).

        ``return_map=True`` also returns the modulated map with channels first, (B, C, ...), for the shared
        head's region features."""
        x = self(feats, text_emb, channel_dim)
        pooled = self._attend(x.movedim(channel_dim, -1).reshape(x.shape[0], -1, self.channels), text_emb)
        return (pooled, x.movedim(channel_dim, 1)) if return_map else pooled

    def _attend(self, tokens: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """(B, N, C) modulated tokens -> (B, C)."""
        if not self.attn_pool:
            return tokens.mean(dim=1)
        q = self.query(text_emb)  # (B, C)
        # Keys are layer-normalised (no affine) so that the logits do not scale with the backbone's
        # feature magnitude (post-ReLU CNN maps vs LayerNorm'ed tokens) and the softmax stays soft.
        keys = F.layer_norm(tokens, (self.channels,))
        logits = torch.einsum("bnc,bc->bn", keys, q) / math.sqrt(self.channels)
        weights = logits.softmax(dim=-1)
        return torch.einsum("bn,bnc->bc", weights, tokens)
