"""The weights that ship inside the package (``ravar_bench/weights/tiny/``) and their manifest.

One safetensors file (fp16) per method and input size: ``<method>@<size>.safetensors``, the whole state dict
of the method's tiny instance built for that size, except large vocabulary tables (see :func:`kept_keys`).
``manifest.json`` holds per file: sha256, the command that made it, the code commit, the corpus (generator
version, seeds, sizes), steps, the pretext's held-out score and the architecture (key -> shape), so that a
tiny architecture changed without its weights being remade is found (tests/test_pretrained_weights.py).

Loading is strict, as for every checkpoint of the suite: a file whose keys or shapes do not fit the instance is
a :class:`CheckpointError` naming the method and the command that remakes it.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..reference import PACKAGE_ROOT
from .checkpoint import CheckpointError, record_load, sha256

WEIGHTS_DIR = PACKAGE_ROOT / "weights" / "tiny"
MANIFEST = "manifest.json"
VOCAB_ROWS = 1000  # embedding tables at least this long are vocabularies: not shipped (see kept_keys)
LAYOUT = "RAVAR-Bench pretrained tiny weights (safetensors, fp16)"


def file_name(method: str, size: int) -> str:
    return f"{method}@{int(size)}.safetensors"


def remake_command(method: str) -> str:
    return f"ravar-bench pretrain --methods {method}"


def vocab_prefixes(module: nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of the vocabulary tables (token embeddings of a CLIP / BERT tower a method owns).

    Why they are left out: the pretext reads one fixed sentence, so pretraining changes only the rows of its few
    tokens; shipping 49,408 x 64 untouched rows per CLIP tower would be three quarters of the whole set's size.
    They start from the method's own seeded initialisation, as with ``init.weights="scratch"``."""
    return tuple(f"{name}." for name, m in module.named_modules()
                 if isinstance(m, nn.Embedding) and m.num_embeddings >= VOCAB_ROWS)


def kept_keys(module: nn.Module) -> dict[str, torch.Tensor]:
    """The state-dict entries a shipped file holds: everything except the vocabulary tables."""
    skip = vocab_prefixes(module)
    return {k: v for k, v in module.state_dict().items() if not k.startswith(skip) if v.is_floating_point()
            or v.dtype in (torch.int64, torch.int32, torch.bool, torch.uint8)}


def architecture(module: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in sorted(kept_keys(module).items())}


def read_manifest(folder: Path = WEIGHTS_DIR) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {"files": {}}
    return json.loads(path.read_text())


def ships(method: str, folder: Path = WEIGHTS_DIR) -> bool:
    """Whether the manifest lists pretrained files for ``method``. A method it does not list (a plug-in, a method
    added after the files were made) starts from its own initialisation under init.weights="pretrained" too; its
    rows' ``loaded_weights`` then name no file and the leaderboard's note says "random weights". A listed method
    whose file is missing or does not fit is an error."""
    return any(e.get("method") == method for e in read_manifest(folder)["files"].values())


def start_sizes(cfg) -> dict[str, int]:
    """Under ``init.weights="pretrained"``: which instance starts from which shipped size (``{"method": 64,
    "actor": 32}``); ``init.instances="actor"`` leaves the whole-clip instance out. The factory loads these files
    and the provenance digests them, so both read the config the same way."""
    init = cfg.get("init", {})
    if init.get("weights", "scratch") != "pretrained":
        return {}
    head, img = cfg.get("head", {}), int(cfg.data.img_size)
    out = {"method": img} if init.get("instances", "all") == "all" else {}
    if head.get("actor_pass"):
        out["actor"] = int(head.get("actor_size") or img)
    return out


def _refuse(method: str, size: int, path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{method}: the shipped pretrained weights {path} {why}; remake them with "
                           f"`{remake_command(method)}` (or start from random weights: --cfg-options init.weights=scratch)")


def check_fits(module: nn.Module, method: str, size: int, folder: Path = WEIGHTS_DIR) -> Path:
    """The file for ``method`` at ``size`` px, after checking from its header alone (no tensor is read, so this
    works on the meta device) that its keys and shapes are those of ``module``; else a CheckpointError."""
    from safetensors import safe_open

    path = Path(folder) / file_name(method, size)
    if not path.is_file():
        raise _refuse(method, size, path, "do not exist")
    want = architecture(module)
    with safe_open(str(path), framework="pt") as f:
        have = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    shapes = [(k, have[k], want[k]) for k in sorted(set(want) & set(have)) if have[k] != want[k]]
    if missing or extra or shapes:
        detail = "; ".join(x for x in (
            f"{len(missing)} tensors of the instance missing (e.g. {missing[:3]})" if missing else "",
            f"{len(extra)} tensors the instance does not have (e.g. {extra[:3]})" if extra else "",
            f"{len(shapes)} of other shapes (key, file, instance: {shapes[:3]})" if shapes else "") if x)
        raise _refuse(method, size, path, f"do not fit the current tiny architecture at {size} px: {detail}")
    return path


def load_shipped(module: nn.Module, method: str, size: int, folder: Path = WEIGHTS_DIR) -> dict:
    """Load the shipped file of ``method`` at ``size`` px into ``module`` (strict; on the meta device only the
    fit is checked). Returns the record the result row's ``loaded_weights`` column keeps."""
    from safetensors.torch import load_file

    path = check_fits(module, method, size, folder)
    n = len(architecture(module))
    if any(p.is_meta for p in module.parameters()):
        return {"file": str(path), "layout": LAYOUT, "set": n, "total": n}
    sd = load_file(str(path))
    own = module.state_dict()
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=False)
    return record_load(module, path, LAYOUT, len(sd), len(own))


def save_shipped(module: nn.Module, method: str, size: int, entry: dict, folder: Path = WEIGHTS_DIR) -> Path:
    """Write ``method@size`` (fp16 floats) and its manifest entry (``entry`` + sha256, architecture) atomically."""
    from safetensors.torch import save_file

    from ..files.atomic import atomic_write, write_json_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in kept_keys(module).items()}
    path = folder / file_name(method, size)
    atomic_write(path, lambda tmp: save_file(sd, str(tmp)))
    man = read_manifest(folder)
    man["files"][path.name] = {**entry, "method": method, "size": int(size), "sha256": sha256(path),
                               "bytes": path.stat().st_size, "architecture": architecture(module)}
    write_json_atomic(folder / MANIFEST, man)
    return path
