"""The result row, declared once: every column a (method, split, seed) result carries, its type and its group.

The trainer writes rows through :func:`make_row` (an undeclared or missing column is a bug caught there, not a
blank cell in a table), ``results.csv`` is ordered by :data:`COLUMNS`, and the leaderboard, its notes and the page
read the CSV through :func:`read_results_csv`, which gives every declared column its type. As
lm-evaluation-harness's ``result_schema``: one declaration, readers and writers bound to it.

Groups (``Column.group``): ``id`` who and what; ``metric`` the headline metrics and their variants (percent);
``ci`` 95% bootstrap intervals; ``people`` by people per clip; ``control`` the referring swap, the static clip
and the no-position controls; ``factor`` RefAVA-Synth's factor breakdowns; ``run`` settings and cost; ``skip``
skipped input (:mod:`.skips`); ``significance`` the paired test against the best method (report.post_run);
``provenance`` what made it (:mod:`.provenance`). ``required``: present in every row (the others depend on the data
and the eval settings: no factors on real RefAVA, no intervals with ``eval.n_boot=0``, ...).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .provenance import PROVENANCE_COLUMNS


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "str" | "int" | "float" | "bool"
    group: str
    required: bool = False


def _cols(group: str, dtype: str, names, required: bool = False) -> list[Column]:
    return [Column(n, dtype, group, required) for n in names]


_PEOPLE = [f"{k}_p{p}" for p in ("1", "2", "3", "4", "5+") for k in ("n", "mIoU", "mAP")]
_FACTORS = [f"{k}_{g}" for g in ("colour_shared", "colour_distinct", "ref_appearance", "ref_position", "ref_both")
            for k in ("n", "mIoU", "mAP")]
_ACT = [f"mAP_act_{t}" for t in ("static", "motion", "object", "interaction")]
_SKIPS = ["skipped_invalid", "skipped_missing_key", "skipped_frames", "detections_missing"]
# kept, not skipped: the first of several boxes / sentences of one key is used (as the released loader does)
_SEVERAL = ["first_of_several_boxes", "first_of_several_texts"]

COLUMNS: tuple[Column, ...] = tuple(
    _cols("id", "str", ["method", "family", "split"], True) + _cols("id", "int", ["seed"], True)
    + _cols("metric", "float", ["mIoU", "mAP", "AUROC"], True)
    + _cols("id", "str", ["paper_name"]) + _cols("id", "str", ["origin"], True)
    + _cols("metric", "int", ["n_instances", "n_classes_scored"], True)
    + _cols("metric", "float", ["mAP_PM", "mAP_OM", "mAP_PI", "macro_mAP", "macro_AUROC", "macro_mAP_PM",
                                "macro_mAP_OM", "macro_mAP_PI", "gated_mAP", "gated_AUROC"])
    + _cols("skip", "int", ["skipped_instances", "no_detection_count"], True)
    + _cols("ci", "float", [f"{m}_ci_{b}" for m in ("mIoU", "mAP", "AUROC") for b in ("lo", "hi")])
    + [Column(n, "int" if n.startswith("n_") else "float", "people") for n in _PEOPLE]
    + [Column("swap_n", "int", "control")]
    + _cols("control", "float", ["swap_mIoU", "swap_drop_mIoU", "swap_mAP", "swap_drop_mAP", "swap_AUROC",
                                 "swap_drop_AUROC"])
    + [Column(n, "int" if n.startswith("n_") else "float", "factor") for n in _FACTORS]
    + _cols("factor", "float", _ACT)
    + _cols("control", "float", ["static_mAP", "static_drop_mAP", "static_drop_mIoU"]
            + [f"static_drop_{a}" for a in _ACT])
    + [Column("nopos_n", "int", "control")] + _cols("control", "float", ["nopos_mIoU", "nopos_drop_mIoU",
                                                                            "nopos_drop_mAP"])
    + _cols("metric", "float", [f"rephrase_{m}" for m in ("mIoU", "mAP", "AUROC")])
    + _cols("run", "str", ["protocol"], True) + _cols("run", "float", ["iou_gate"])
    + _cols("run", "str", ["config_set"], True) + _cols("run", "int", ["epochs", "train_instances"], True)
    + _cols("run", "float", ["train_time_s", "eval_time_s", "train_clips_per_s"], True)
    + _cols("run", "int", ["params", "trainable_params"], True) + _cols("run", "str", ["precision"], True)
    + _cols("run", "str", ["text_path"]) + _cols("run", "str", ["loaded_weights"], True)
    + _cols("skip", "int", _SKIPS + _SEVERAL + [f"train_{k}" for k in _SKIPS + _SEVERAL], True)
    + _cols("significance", "float", [f"p_vs_best_{m}" for m in ("mIoU", "mAP", "AUROC")])
    + _cols("significance", "str", ["best_method"]) + _cols("significance", "int", ["p_n_boot"])
    + [Column(n, "bool" if n == "git_dirty" else "str", "provenance", True) for n in PROVENANCE_COLUMNS]
)
BY_NAME = {c.name: c for c in COLUMNS}
NAMES = tuple(BY_NAME)
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
HEADLINE = ("mIoU", "mAP", "AUROC")
SKIP_COLUMNS = tuple(_SKIPS)


def group(name: str) -> tuple[str, ...]:
    """The columns of one group, in the declared order."""
    return tuple(c.name for c in COLUMNS if c.group == name)


class SchemaError(RuntimeError):
    """A row the code made does not fit the declaration: a bug in the suite (a user cannot cause it)."""


def make_row(**fields) -> dict:
    """One result row in the declared column order; every field must be declared and every required one given."""
    unknown = [k for k in fields if k not in BY_NAME]
    missing = [k for k in REQUIRED if k not in fields]
    if unknown or missing:
        raise SchemaError(f"result row of {fields.get('method')!r}: undeclared columns {unknown}, missing required "
                          f"columns {missing} (declare them in ravar_bench/engine/result_schema.py)")
    return {c.name: fields[c.name] for c in COLUMNS if c.name in fields}


def check_row(row: dict) -> list[str]:
    """What in ``row`` (e.g. one read back from a results JSON) does not fit the declaration (empty: it fits)."""
    problems = [f"undeclared column {k!r}" for k in row if k not in BY_NAME]
    problems += [f"missing column {k!r}" for k in REQUIRED if k not in row]
    for k, v in row.items():
        col = BY_NAME.get(k)
        if col is None or v is None:
            continue
        ok = {"str": isinstance(v, str), "bool": isinstance(v, bool) or v in ("unknown",),
              "int": isinstance(v, int) and not isinstance(v, bool),
              "float": isinstance(v, (int, float)) and not isinstance(v, bool)}[col.dtype]
        if not ok:
            problems.append(f"column {k!r} is {type(v).__name__} {v!r}, declared {col.dtype}")
    return problems


def order_columns(columns) -> list[str]:
    """``columns`` in the declared order (results.csv's); undeclared ones (a plug-in's) after them."""
    declared = [n for n in NAMES if n in set(columns)]
    return declared + [c for c in columns if c not in BY_NAME]


def read_results_csv(path: str | Path):
    """results.csv as a DataFrame whose declared columns have their declared types (str columns stay strings:
    a digest of digits is not a number)."""
    import pandas as pd

    strs = {c.name: str for c in COLUMNS if c.dtype == "str"}
    return pd.read_csv(path, dtype=strs, keep_default_na=True)
