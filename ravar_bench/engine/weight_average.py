"""An exponential moving average of a model's trainable weights and buffers (``train.ema``), the weights that are
evaluated and saved when it is on: a few hundred optimiser steps from a random start end on noisy weights, and
their average over the last steps is the standard remedy of short budgets (airbench; Polyak averaging).

Written here rather than taken from ``timm.utils.ModelEmaV3`` or ``torch.optim.swa_utils.AveragedModel``: both
deep-copy the whole module, and ours carries frozen towers and their feature caches (ravar_bench/encoders/
frozen_cache.py), which would be copied for nothing. Only the tensors that change in training are averaged: the
trainable parameters and the floating-point buffers (BatchNorm statistics)."""
from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """``decay`` at step t is ``min(decay, (1 + t) / (10 + t))`` (TensorFlow's ``ExponentialMovingAverage`` with
    ``num_updates``, timm's ModelEma warm-up in spirit): early steps, far from the end, are forgotten quickly."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema: the decay must be in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.steps = 0
        state = model.state_dict(keep_vars=True)  # non-persistent buffers are not saved, so not averaged
        self.names = [n for n, p in model.named_parameters() if p.requires_grad and n in state]
        self.names += [n for n, b in model.named_buffers() if b.is_floating_point() and n in state]
        self.avg = {n: state[n].detach().float().clone() for n in self.names}

    def _live(self, model: nn.Module) -> list[torch.Tensor]:
        state = model.state_dict(keep_vars=True)
        missing = [n for n in self.names if n not in state]
        if missing:
            raise KeyError(f"train.ema: the model has no {missing[:3]} any more")
        return [state[n].detach() for n in self.names]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One optimiser step's average: ``avg <- decay_t * avg + (1 - decay_t) * weights``."""
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        live = [t.float() for t in self._live(model)]
        avg = [self.avg[n] for n in self.names]
        torch._foreach_lerp_(avg, live, 1.0 - d)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """The averaged tensors written into ``model`` (its dtypes kept)."""
        for n, t in zip(self.names, self._live(model)):
            t.copy_(self.avg[n].to(t.dtype))

    def state_dict(self) -> dict:
        return {"decay": self.decay, "steps": self.steps, "avg": dict(self.avg)}

    def load_state_dict(self, st: dict) -> None:
        if set(st["avg"]) != set(self.names):
            raise KeyError("train.ema: the checkpoint's averaged tensors do not match the model's")
        self.decay, self.steps = float(st["decay"]), int(st["steps"])
        self.avg = {n: st["avg"][n].float().clone() for n in self.names}
