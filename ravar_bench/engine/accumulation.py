"""Gradient accumulation (``train.grad_accum``): micro-batches per optimiser step, and where the steps fall."""
from __future__ import annotations


def grad_accum(train_cfg) -> int:
    k = int(train_cfg.get("grad_accum", 1) or 1)
    if k < 1:
        raise ValueError(f"train.grad_accum must be >= 1, got {k}")  # load_config refuses it first
    return k


def optimizer_steps(n_batches: int, accum: int) -> int:
    """Optimiser steps in an epoch of ``n_batches`` micro-batches (the last partial group steps too)."""
    return -(-n_batches // accum)


def is_step_boundary(i: int, n_batches: int, accum: int) -> bool:
    """After micro-batch ``i`` (0-based) of ``n_batches``: time for the optimiser step?"""
    return (i + 1) % accum == 0 or i + 1 == n_batches
