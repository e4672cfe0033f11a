"""Mixed precision and activation checkpointing (gradient accumulation: :mod:`.accumulation`; the loaders' host-side
settings: :func:`ravar_bench.data.dataset.loader_kwargs`).

Config keys (``train.*``, defaults in configs/_base_/runtime.py):

- ``precision``: ``"auto"`` | ``"fp32"`` | ``"bf16"`` | ``"fp16"``. ``auto`` = bf16 on a CUDA device that
  supports it, else fp32 (on a CPU, bf16 autocast is slower than fp32 for most of these models, and nothing
  needs the memory). Forward and loss run under ``torch.autocast``; fp16 adds a ``GradScaler`` (bf16 has fp32's
  exponent range and needs none). fp32 on CUDA allows TF32 matmuls / convolutions.
- Frozen parts (every maximal sub-module whose parameters are all frozen, e.g. BLIP-2's ViT-g) are stored in the
  compute dtype: half the memory and bandwidth of the largest part of RefAtomNet / BLIPv2 / AskAnything. Trainable
  parameters stay fp32 (autocast casts them per op; AdamW updates fp32 masters). A frozen part whose inputs need no
  gradient records no graph (autograd saves nothing when no input and no parameter requires grad); the encoders
  that are frozen by construction also run under ``torch.no_grad`` themselves (blip2.py, text.py). Not
  ``inference_mode``: its outputs cannot enter the trained graph (autograd refuses to save inference tensors).
- ``grad_accum``: k micro-batches per optimiser step (loss / k), so the paper's effective batch of 128 fits one
  GPU; the last, partial group of an epoch still steps.
- ``activation_checkpointing``: recompute the activations of the trainable towers in backward (transformers
  ``gradient_checkpointing_enable``, timm / open_clip ``set_grad_checkpointing``).
- ``num_workers`` / ``pin_memory`` (``"auto"``: on when CUDA is available) / ``prefetch_factor``; workers persist
  across epochs.

Written here rather than with a trainer library because the engine's own loop is the only batch loop
(docs/architecture.md), and these are the few lines torch.amp leaves to the caller.
"""
from __future__ import annotations

import contextlib
import logging
import types

import torch
from torch import nn

from ..config import PRECISIONS
from ..method import frozen_modules

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(name: str | None, device) -> str:
    """``auto`` -> bf16 on CUDA with bf16 support, else fp32; an unknown name is a clear error."""
    name = "auto" if name is None else str(name)
    if name not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {PRECISIONS}, got {name!r}")
    if name != "auto":
        return name
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


class MixedPrecision:
    """One training run's precision policy: autocast context, scaled backward, optimiser step."""

    def __init__(self, name: str | None = "auto", device="cpu"):
        self.device_type = torch.device(device).type
        self.name = resolve_precision(name, device)
        self.dtype = DTYPES[self.name]
        # fp16 only: bf16 keeps fp32's exponent range, so its gradients do not underflow
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")

    @property
    def enabled(self) -> bool:
        return self.name != "fp32"

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor, accum: int = 1) -> None:
        self.scaler.scale(loss / accum).backward()

    def step(self, opt: torch.optim.Optimizer, params, grad_clip: float | None = None) -> bool:
        """Unscale, clip, step, update the scale. False when fp16 found inf/nan gradients and skipped the step."""
        self.scaler.unscale_(opt)
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        if not self.scaler.is_enabled():
            opt.step()
            return True
        scale = self.scaler.get_scale()
        self.scaler.step(opt)
        self.scaler.update()
        return self.scaler.get_scale() >= scale

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler.is_enabled() else {}

    def load_state_dict(self, state: dict | None) -> None:
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


def allow_tf32(device) -> None:
    """TF32 for fp32 matmuls / convolutions on CUDA (Ampere and later); no effect on CPU."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def frozen_towers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """:func:`ravar_bench.method.frozen_modules` below the model itself (a wholly frozen model is not cast:
    nothing would train), except those that declare ``keep_fp32`` (model/candidates.py)."""
    return [(n, m) for n, m in frozen_modules(model) if n and not getattr(m, "keep_fp32", False)]


def cast_frozen(model: nn.Module, dtype: torch.dtype) -> int:
    """Store every frozen tower in ``dtype``; returns the number of parameters cast."""
    if dtype == torch.float32:
        return 0
    n = 0
    for _, mod in frozen_towers(model):
        mod.to(dtype)
        n += sum(p.numel() for p in mod.parameters())
    return n


def _conv_outside_autocast(self, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast(x.device.type, enabled=False):
        return type(self).forward(self, x.to(self.weight.dtype))  # the class's own forward (mmcv's wrapper too)


def conv3d_in_fp32(model: nn.Module) -> int:
    """On a CPU, run every Conv3d (and subclass: mmcv's wrapper) outside autocast, in its weights' dtype.

    Why: torch 2.14.1's CPU (oneDNN) bf16 Conv3d computes WRONG weight gradients for some shapes (seen: a
    (5, 7, 7) stride (1, 2, 2) stem at every batch size, a (3, 1, 1) kernel over 2 frames at batch 4: values of
    1e19 or NaN where fp32 gives ~1e2; tests/test_precision.py keeps the case). GPUs (cuDNN) are not affected.
    A bound method on the instance: parameters and state-dict keys stay as they are, and ``copy.deepcopy`` rebinds
    it to the copy. Returns how many convolutions were switched."""
    n = 0
    for mod in model.modules():
        if isinstance(mod, nn.Conv3d) and "forward" not in vars(mod):
            mod.forward = types.MethodType(_conv_outside_autocast, mod)
            n += 1
    return n


def enable_activation_checkpointing(model: nn.Module) -> list[str]:
    """Gradient checkpointing in the trainable towers that offer it; returns their names."""
    done = []
    for name, mod in model.named_modules():
        if not any(p.requires_grad for p in mod.parameters()):
            continue
        if any(name.startswith(d + ".") for d in done):  # an outer tower already does it
            continue
        if getattr(mod, "supports_gradient_checkpointing", False) and hasattr(mod, "gradient_checkpointing_enable"):
            mod.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            done.append(name)
        elif hasattr(mod, "set_grad_checkpointing") and name:
            mod.set_grad_checkpointing(True)
            done.append(name)
    return done


def prepare_model(model: nn.Module, train_cfg, device) -> MixedPrecision:
    """Apply the run's precision to a built model (on its device): returns the policy the loop uses.

    Evaluation must run under the same policy (a frozen tower stored in bf16 must not meet fp32 activations
    outside autocast): the trainer passes it to ``predict`` (:func:`autocast_for`)."""
    prec = MixedPrecision(train_cfg.get("precision", "auto"), device)
    allow_tf32(device)
    n = cast_frozen(model, prec.dtype)
    if prec.enabled and prec.device_type == "cpu":
        conv3d_in_fp32(model)
    if n:
        log.info("precision %s: %.1fM frozen parameters stored in %s", prec.name, n / 1e6, prec.dtype)
    if train_cfg.get("activation_checkpointing", False):
        towers = enable_activation_checkpointing(model)
        log.info("activation checkpointing in: %s", ", ".join(towers) or "none (no tower supports it)")
    return prec


def autocast_for(prec: MixedPrecision | None):
    """The autocast context of a policy from :func:`prepare_model` (None: no autocast)."""
    return prec.autocast() if prec is not None else contextlib.nullcontext()


__all__ = ["MixedPrecision", "resolve_precision", "allow_tf32", "frozen_towers", "cast_frozen",
           "enable_activation_checkpointing", "conv3d_in_fp32", "prepare_model", "autocast_for"]
