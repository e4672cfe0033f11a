"""Results on disk: one JSON per (method, split, seed), written atomically; results.csv is rebuilt from them.

Per-run files mean an interrupted or parallel run never loses finished results, and results.csv can
always be regenerated. Every write goes to a temporary file that replaces the target only when complete,
so a kill at any moment leaves either the old file or the new one, never a half-written one; a full disk is
a clear error that leaves the earlier file as it was.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import ResultsError
from ..files.atomic import atomic_write, write_json_atomic  # noqa: F401 (the engine's writers)
from .result_schema import REQUIRED, order_columns

BASE_COLUMNS = [c for c in REQUIRED if c in ("method", "family", "split", "seed", "mIoU", "mAP", "AUROC")]


def result_path(out_dir: str | Path, method: str, split: str, seed: int) -> Path:
    return Path(out_dir) / "results" / f"{method}__{split}__seed{seed}.json"


def read_result(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except ValueError as e:  # only another program's partial write could cause this: ours are atomic
        raise ResultsError(f"{path}: not a complete result file ({e}); move it away and re-run") from None


def collect_results(out_dir: str | Path) -> pd.DataFrame:
    rows = [read_result(p) for p in sorted((Path(out_dir) / "results").glob("*.json"))]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    return df[order_columns(df.columns)].sort_values(["family", "method", "split", "seed"], kind="stable")


def write_results_csv(out_dir: str | Path) -> Path:
    df = collect_results(out_dir)
    path = Path(out_dir) / "results.csv"
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, float_format="%.4f"))
    return path
