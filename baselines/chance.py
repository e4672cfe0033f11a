"""A control, not a method of the paper: the shared head on a learned constant, blind to video and text.

It can learn only the training set's label frequencies and mean box, so its scores are the floor any
method must clear: on the leaderboard it shows how much of a number is the class prior.
"""
from __future__ import annotations

import torch
from torch import nn

from ravar_bench.method import Method
from ravar_bench.registry import register_method


@register_method("chance", family="Control")
class ChanceControl(Method):
    needs = frozenset()

    def __init__(self, dim: int = 16):
        super().__init__()
        self.const = nn.Parameter(torch.randn(dim) * 0.02)
        self.feat_dim = dim

    def forward(self, batch):
        return self.const.expand(batch["labels"].shape[0], -1)
