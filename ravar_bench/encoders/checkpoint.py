"""Loading local checkpoints into a backbone: key mapping, missing/unexpected keys reported, no hub."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

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
    for k in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and k in obj and isinstance(obj[k], dict):
            obj = obj[k]
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: {p} does not hold a state dict (got {type(obj).__name__})")
    return obj


def load_into(module: torch.nn.Module, path: str | Path, strip_prefixes=("backbone.", "module."),
              what: str = "checkpoint", strict: bool = False) -> dict:
    """Load ``path`` into ``module`` after stripping ``strip_prefixes``; returns {"missing", "unexpected"}."""
    sd = read_state_dict(path, what)
    mapped = {}
    for k, v in sd.items():
        for pre in strip_prefixes:
            if k.startswith(pre):
                k = k[len(pre):]
                break
        mapped[k] = v
    res = module.load_state_dict(mapped, strict=False)
    report = {"missing": list(res.missing_keys), "unexpected": list(res.unexpected_keys)}
    if report["missing"] or report["unexpected"]:
        msg = (f"{what} {path}: {len(report['missing'])} missing keys {report['missing'][:5]}, "
               f"{len(report['unexpected'])} unexpected keys {report['unexpected'][:5]}")
        if strict:
            raise KeyError(msg)
        log.warning(msg)
    return report
