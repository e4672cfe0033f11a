"""When finished work may be reused, and where stale work goes.

A result row, a final model or a last-epoch checkpoint is reused only when it was made with the same
config digest (the trained weights: the train digest) and the same data identity. Anything else is moved,
never deleted, under ``results/superseded/<stamp>/`` (result JSONs and predictions) and
``runs/<method>/seed<k>/superseded/<stamp>/`` (config, checkpoints, meta), and the (method, seed) is redone
in the same folder. ``--force`` redoes it even when everything matches (the old files are kept the same way).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path

from .results import result_path

log = logging.getLogger(__name__)

RUN_FILES = ("config.py", "model.pt", "last.pt", "meta.json")


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + f"_{os.getpid()}"


def prediction_files(out_dir: Path, name: str, seed: int) -> list[Path]:
    pdir = Path(out_dir) / "predictions"
    tag = f"__seed{seed}"
    return sorted(p for p in pdir.glob(f"{name}__*.npz")
                  if p.name.split("__")[0] == name and (p.stem.endswith(tag) or f"{tag}__" in p.stem))


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _why(old: dict | None, prov: dict, digest_key: str) -> str:
    if old is None:
        return "unreadable"
    if old.get("data") != prov["data"]:
        return f"data {old.get('data', 'unrecorded')} -> {prov['data']}"
    if old.get(digest_key) != prov[digest_key]:
        what = "config digest" if digest_key == "config_digest" else "train digest (config without eval)"
        return f"{what} {old.get(digest_key, 'unrecorded')} -> {prov[digest_key]}"
    return ""


def matches(old: dict | None, prov: dict, digest_key: str = "config_digest") -> bool:
    return old is not None and _why(old, prov, digest_key) == ""


@dataclasses.dataclass
class Plan:
    reuse_rows: list | None  # every split's finished row, when all of them can be reused
    superseded: Path | None  # where stale results went, if anywhere


def plan_results(out_dir, name: str, seed: int, splits, prov: dict, force: bool, move: bool = True) -> Plan:
    """Reuse every split's result when all match; otherwise move whatever exists aside and redo all splits
    (the rows of one (method, seed) always come from one model and one config). ``move``: False on the
    non-zero ranks of a distributed run (rank 0 moves)."""
    out_dir = Path(out_dir)
    paths = [result_path(out_dir, name, s, seed) for s in splits]
    old = [_read_json(p) if p.is_file() else None for p in paths]
    if not force and all(matches(o, prov) for o in old):
        return Plan(old, None)
    present = [p for p in paths if p.is_file()] + prediction_files(out_dir, name, seed)
    if not present or not move:
        return Plan(None, None)
    dest = out_dir / "results" / "superseded" / _stamp()
    dest.mkdir(parents=True, exist_ok=True)
    for p in present:
        os.replace(p, dest / p.name)
    why = "--force" if force else next((_why(o, prov, "config_digest") for o in old if o is not None
                                        and not matches(o, prov)), "a split missing")
    log.warning("%s seed %d: earlier results not reused (%s); kept under %s, re-running", name, seed, why, dest)
    return Plan(None, dest)


def run_folder_usable(work: Path, prov: dict, force: bool, ckpt_meta: dict | None) -> tuple[bool, bool]:
    """Whether ``model.pt`` / ``last.pt`` in ``work`` may be used (read-only: every rank of a distributed run
    decides the same before rank 0 moves anything). ``ckpt_meta``: the provenance stored inside last.pt (None when
    absent or unrecorded)."""
    meta = _read_json(work / "meta.json") if (work / "meta.json").is_file() else None
    model_ok = (work / "model.pt").is_file() and matches(meta, prov, "train_digest") and not force
    ckpt_ok = (work / "last.pt").is_file() and matches(ckpt_meta, prov, "train_digest") and not force
    return model_ok, ckpt_ok


def move_stale_run_files(work: Path, prov: dict, force: bool, ckpt_meta: dict | None, usable: tuple[bool, bool],
                         said: bool = False) -> None:
    """Move the weights :func:`run_folder_usable` refused (with their config and meta) under ``superseded/``.
    ``said``: the results' move was logged already (one warning line per method; this one then goes to INFO)."""
    model_ok, ckpt_ok = usable
    stale = [f for f in RUN_FILES if (work / f).is_file()
             and not ((f == "model.pt" and model_ok) or (f == "last.pt" and ckpt_ok)
                      or (f in ("meta.json", "config.py") and model_ok))]
    if not any(f in stale for f in ("model.pt", "last.pt")):
        return
    meta = _read_json(work / "meta.json") if (work / "meta.json").is_file() else None
    dest = work / "superseded" / _stamp()
    dest.mkdir(parents=True, exist_ok=True)
    for f in stale:
        os.replace(work / f, dest / f)
    why = "--force" if force else _why(meta if "model.pt" in stale else ckpt_meta, prov, "train_digest")
    log.log(logging.INFO if said else logging.WARNING, "%s: trained weights not reused (%s); kept under %s, "
            "training from scratch", work, why, dest)
