"""What a table's rows were made with, for the text under a leaderboard: one config set and one data
identity per table (never a mix), the headline protocol the run asked for, the code and package versions,
and every skipped row, skipped instance and fallback per split.

results.csv in, text out (the leaderboard's room); the columns are written by ravar_bench.engine
(provenance.py, skips.py).
"""
from __future__ import annotations

import pandas as pd

from ..errors import ResultsError

SPLITS = ("train", "val", "test")
# result-row column -> words (kept in step with ravar_bench.engine.skips.COLUMNS)
SKIP_COLUMNS = {
    "skipped_invalid": "invalid annotation rows skipped",
    "skipped_missing_key": "keys missing from one of the three annotation files skipped",
    "skipped_frames": "instances skipped for missing or unreadable frames",
    "detections_missing": "instances without a detections-cache entry (read as no detections)",
    "no_detection_count": "key frames without a usable detection (whole-frame fallback)",
    "first_of_several_boxes": "keys with several boxes (the first used, as the released loader does)",
    "first_of_several_texts": "keys with several sentences (the first used, as the released loader does)",
}


def _values(df: pd.DataFrame, col: str) -> list[str]:
    return sorted(df[col].dropna().astype(str).unique().tolist()) if col in df else []


def select_rows(df: pd.DataFrame, config_set: str | None = None, data: str | None = None) -> pd.DataFrame:
    """The rows of one config set and one data identity. ``data`` matches the identity ("synthetic:<digest>"),
    its digest or a prefix of it. A folder holding several of either without a choice is an error."""
    if config_set is not None and "config_set" in df:
        if config_set not in _values(df, "config_set"):
            raise ResultsError(f"--config-set {config_set}: no rows of it here (config sets: "
                               f"{', '.join(_values(df, 'config_set')) or 'none'})")
        df = df[df["config_set"].astype(str) == config_set]
    if data is not None and "data" in df:
        ident = df["data"].astype(str)
        digest = ident.str.split(":").str[-1]
        keep = (ident == data) | digest.str.startswith(data) | ident.str.startswith(data)
        if not keep.any():
            raise ResultsError(f"--data {data}: no rows of it here (data: {', '.join(_values(df, 'data')) or 'none'})")
        df = df[keep]
    for col, flag in (("config_set", "--config-set"), ("data", "--data")):
        vals = _values(df, col)
        if len(vals) > 1:
            raise ResultsError(f"results.csv mixes rows of {len(vals)} {col.replace('_', ' ')}s ({', '.join(vals)}); "
                               f"they never share a table: pick one with {flag}")
    return df


def headline_protocol(df: pd.DataFrame, protocol: str | None) -> str:
    """The protocol asked for, else the one the run's config named (``eval.average``), else the authors'."""
    if protocol is None:
        vals = _values(df, "protocol")
        protocol = vals[0] if len(vals) == 1 else "weighted"
    if protocol == "gated" and not any(c.startswith("gated_") and df[c].notna().any() for c in df.columns):
        raise ResultsError("no IoU-gated columns in these results: the run had eval.iou_gate=None; re-run with "
                           "--cfg-options eval.iou_gate=0.5 (0 is a valid gate)")
    return protocol


def provenance_note(df: pd.DataFrame) -> str:
    if "git_commit" not in df:
        return "Provenance: not recorded (results made before provenance columns existed)."
    commits = []
    for (c, d), _ in df.groupby([df["git_commit"].astype(str), df.get("git_dirty", pd.Series("?", index=df.index))
                                 .astype(str)]):
        commits.append(f"`{c[:12]}`" + (" (uncommitted changes)" if d == "True" else ""))
    data = ", ".join(f"`{v}`" for v in _values(df, "data"))
    gen = "; ".join(_values(df, "data_generator"))
    pk = ", ".join(f"{name} {'/'.join(_values(df, col))}" for name, col in (
        ("torch", "torch_version"), ("transformers", "transformers_version"), ("mmaction2", "mmaction2_version"))
        if col in df)
    dev = ", ".join(_values(df, "device"))
    return (f"Provenance: code {', '.join(commits)}; data {data}" + (f" ({gen})" if gen else "")
            + f"; {pk}; device {dev}. Each row's config digest is in results.csv (`config_digest`).")


def skips_note(df: pd.DataFrame) -> str:
    """Per split, the largest count over the table's rows of every skip and fallback, or that there were none."""
    parts = []
    for split in SPLITS:
        if split == "train":
            sub, pre = df, "train_"
        else:
            sub, pre = df[df["split"] == split], ""
        found = []
        for col, words in SKIP_COLUMNS.items():
            c = pre + col
            if c in sub and pd.to_numeric(sub[c], errors="coerce").fillna(0).max() > 0:
                per = sub.groupby("method")[c].max()
                per = per[per > 0]
                who = "every method" if len(per) == sub["method"].nunique() and per.nunique() == 1 else \
                    ", ".join(f"{m} {int(v)}" for m, v in per.items())
                found.append(f"{int(per.max())} {words} ({who})")
        if found:
            parts.append(f"{split}: " + "; ".join(found))
    if not any(c in df for c in SKIP_COLUMNS):
        return "Skips and fallbacks: not recorded in these results."
    if not parts:
        return "Skips and fallbacks: none (every annotation row, frame and detection was used)."
    return "Skips and fallbacks (scores are over the reduced data): " + " | ".join(parts) + "."


def run_notes(df: pd.DataFrame) -> list[str]:
    return [provenance_note(df), "", skips_note(df), ""]
