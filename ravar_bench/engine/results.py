"""Results on disk: one JSON per (method, split, seed), written atomically; results.csv is rebuilt from them.

Per-run files mean an interrupted or parallel run never loses finished results, and results.csv can
always be regenerated. Every write goes to a temporary file that replaces the target only when complete,
so a kill at any moment leaves either the old file or the new one, never a half-written one; a full disk is
a clear error that leaves the earlier file as it was.
"""
from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import pandas as pd

from ..errors import ResultsError
from ..files.atomic import atomic_write, write_json_atomic  # noqa: F401 (the engine's writers)
from .result_schema import order_columns, read_results_csv

BASE_COLUMNS = ["method", "family", "split", "seed", "mIoU", "mAP", "AUROC"]
ROW_KEY = ["method", "split", "seed"]  # one result JSON per (method, split, seed) of a folder
CSV_DIGITS = 4  # write_results_csv's float_format: a CSV value agrees with its JSON to this many decimals

log = logging.getLogger(__name__)


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


def _csv_problem(path: Path) -> str | None:
    """Where ``path`` stops being whole rows: 'line N: ...' for a row with another number of fields than the
    header (a cut last line, as a full disk or a killed editor leaves it) or an unparsable key / metric, else None."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.reader(f))
    if not rows:
        return "line 1: empty file (no header)"
    header = rows[0]
    missing = [c for c in BASE_COLUMNS if c not in header]
    if missing:
        return f"line 1: the header lacks column '{missing[0]}'"
    col = {c: header.index(c) for c in BASE_COLUMNS}
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            return f"line {n}: {len(row)} fields, the header has {len(header)}"
        if not row[col["method"]] or not row[col["split"]]:
            return f"line {n}: empty 'method' or 'split'"
        try:
            int(row[col["seed"]])
            for c in ("mIoU", "mAP", "AUROC"):
                if row[col[c]] != "":  # empty: NaN (e.g. AUROC of a degenerate split), as to_csv writes it
                    float(row[col[c]])
        except ValueError:
            return f"line {n}: a value of 'seed', 'mIoU', 'mAP' or 'AUROC' is not a number"
    return None


def _same(a, b) -> bool:
    fa, fb = _num(a), _num(b)
    if fa is not None and fb is not None:
        return (math.isnan(fa) and math.isnan(fb)) or abs(fa - fb) <= 0.6 * 10 ** -CSV_DIGITS
    return str(a) == str(b) or (_blank(a) and _blank(b))


def _num(v):
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v == ""


def _disagreement(csv_df: pd.DataFrame, json_df: pd.DataFrame) -> str | None:
    """The first way results.csv differs from results/*.json (rows, columns or a value), or None."""
    def keyed(df):
        return {(str(r["method"]), str(r["split"]), int(r["seed"])): r for r in df.to_dict("records")}

    a, b = keyed(csv_df), keyed(json_df)
    if a.keys() != b.keys():
        extra, gone = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        return (f"row {extra[0]} has no result JSON" if extra else f"result {gone[0]} has no row")
    cols = [c for c in json_df.columns if c not in csv_df.columns]
    if cols:
        return f"column '{cols[0]}' of the result JSONs is missing"
    for k, row in b.items():
        for c, v in row.items():
            if not _same(a[k].get(c), v):
                return f"row {k}: '{c}' is {a[k].get(c)!r}, its JSON says {v!r}"
    return None


def read_results_table(out_dir: str | Path, rebuild: bool = True) -> tuple[pd.DataFrame, str | None]:
    """DIR/results.csv as whole rows that agree with DIR/results/*.json, and a one-line note when it was rebuilt.

    results.csv is a cache of the result JSONs (written atomically, one per result): a row that does not parse
    into every column, or that disagrees with its JSON, makes it be rebuilt from them (``rebuild``); with no
    JSON to rebuild from, a damaged file is a :class:`ResultsError` naming the file and the line."""
    path = Path(out_dir) / "results.csv"
    problem = _csv_problem(path)
    jsons = sorted((Path(out_dir) / "results").glob("*.json"))
    if problem and not jsons:
        raise ResultsError(f"{path}, {problem}; no results/*.json to rebuild it from: re-run the methods, or "
                           f"restore the file")
    if not jsons:
        return read_results_csv(path), None
    expected = collect_results(out_dir)
    why = problem or _disagreement(pd.read_csv(path), expected)
    if why is None:
        return read_results_csv(path), None
    note = f"{path}: {why}; rebuilt from the {len(jsons)} result JSONs in {Path(out_dir) / 'results'}"
    if rebuild:
        write_results_csv(out_dir)
    return read_results_csv(path), note
