"""Loading local checkpoints into a backbone: key mapping, missing/unexpected keys reported, no hub."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

log = logging.getLogger(__name__)


def _numpy_safe_globals():
    # mmengine/mmaction checkpoints keep numpy scalars in their 'meta'; allow exactly those types
    # through weights_only loading instead of falling back to a full (code-running) unpickle.
    import numpy as np

    allowed = [np.dtype, np.ndarray]
    for modname in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            mod = __import__(modname, fromlist=["_reconstruct", "scalar"])
            allowed += [mod._reconstruct, mod.scalar]
        except (ImportError, AttributeError):
            pass
    allowed += [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32", "bool")]
    return allowed


def read_state_dict(path: str | Path, what: str = "checkpoint") -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"{what}: no local file at {p}. Nothing is downloaded at run time: download the checkpoint yourself "
            f"and set its path in the config (model.pretrained=/path/to/file)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    with torch.serialization.safe_globals(_numpy_safe_globals()):
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    for k in ("state_dict", "model", "module", "model_state"):  # model_state: Hiera's own checkpoints
        if isinstance(obj, dict) and k in obj and isinstance(obj[k], dict):
            obj = obj[k]
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: {p} does not hold a state dict (got {type(obj).__name__})")
    return obj


def load_into(module: torch.nn.Module, path: str | Path, strip_prefixes=("backbone.", "module."),
              what: str = "checkpoint", strict: bool = False, ignore_prefixes=()) -> dict:
    """Load ``path`` into ``module`` after stripping ``strip_prefixes``; returns {"missing", "unexpected", "ignored"}.

    ``ignore_prefixes`` (after stripping): keys deliberately not loaded, e.g. a Kinetics-400 classifier
    (``cls_head.``, ``head.``) that the RAVAR model replaces; they are counted in "ignored", not "unexpected".
    A tensor whose shape differs from the module's is an error naming the keys (usually a checkpoint for
    another clip length / image size / width), never a silent skip.
    """
    sd = read_state_dict(path, what)
    mapped, ignored = {}, []
    for k, v in sd.items():
        for pre in strip_prefixes:
            if k.startswith(pre):
                k = k[len(pre):]
                break
        if any(k.startswith(pre) for pre in ignore_prefixes):
            ignored.append(k)
            continue
        mapped[k] = v
    own = module.state_dict()
    bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in mapped.items()
           if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise CheckpointShapeError(
            f"{what} {path}: {len(bad)} tensors have other shapes than the model built from the config "
            f"(key, file, model): {bad[:5]}; the checkpoint is for another architecture, clip length or image size")
    res = module.load_state_dict(mapped, strict=False)
    report = {"missing": list(res.missing_keys), "unexpected": list(res.unexpected_keys), "ignored": ignored}
    if report["missing"] or report["unexpected"]:
        msg = (f"{what} {path}: {len(report['missing'])} missing keys {report['missing'][:5]}, "
               f"{len(report['unexpected'])} unexpected keys {report['unexpected'][:5]}")
        if strict:
            raise KeyError(msg)
        log.warning(msg)
    if ignored:
        log.info("%s %s: %d keys not loaded on purpose (%s...)", what, path, len(ignored), ignored[:3])
    return report


class CheckpointShapeError(RuntimeError):
    """A checkpoint tensor's shape differs from the model's (a RuntimeError, as torch's own load error)."""


class _SchedulesOnCPU(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.linspace and kwargs.get("device") is None:
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


@contextlib.contextmanager
def meta_safe_build():
    """Build a library backbone under ``build_method(..., device="meta")``.

    Several libraries (mmaction's VisionTransformer, hiera) compute their drop-path schedule as
    ``[x.item() for x in torch.linspace(...)]``, and ``.item()`` is impossible on a meta tensor. Inside
    this context ``torch.linspace`` without an explicit device runs on the CPU (a handful of floats);
    every parameter is still created on the ambient device. Harmless outside a meta context.
    """
    with _SchedulesOnCPU():
        yield


def mmengine_init_weights(module: torch.nn.Module) -> None:
    """Run an OpenMMLab backbone's own ``init_weights()`` (its published initialisation scheme) without the
    per-parameter table mmengine logs at INFO level when no log file is attached. A meta-device module
    (``build_method(..., device="meta")``) has no values to initialise and is left alone (mmengine's
    bookkeeping copies every parameter to the CPU, which a meta tensor cannot do)."""
    from mmengine.logging import MMLogger

    if any(p.is_meta for p in module.parameters()):
        return

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    finally:
        logger.setLevel(level)
