"""Results on disk: one JSON per (method, split, seed), written atomically; results.csv is rebuilt from them.

Per-run files mean an interrupted or parallel run never loses finished results, and results.csv can
always be regenerated.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

BASE_COLUMNS = ["method", "family", "split", "seed", "mIoU", "mAP", "AUROC"]


def result_path(out_dir: str | Path, method: str, split: str, seed: int) -> Path:
    return Path(out_dir) / "results" / f"{method}__{split}__seed{seed}.json"


def write_json_atomic(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    os.replace(tmp, path)


def collect_results(out_dir: str | Path) -> pd.DataFrame:
    rows = [json.loads(p.read_text()) for p in sorted((Path(out_dir) / "results").glob("*.json"))]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    rest = [c for c in df.columns if c not in BASE_COLUMNS]
    return df[BASE_COLUMNS + rest].sort_values(["family", "method", "split", "seed"], kind="stable")


def write_results_csv(out_dir: str | Path) -> Path:
    df = collect_results(out_dir)
    path = Path(out_dir) / "results.csv"
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    df.to_csv(tmp, index=False, float_format="%.4f")
    os.replace(tmp, path)
    return path
