"""The key-frame detections cache: one JSON file per split, key -> detections.

    DIR/detections/{split}_detections.json
    {"format": "ravar-detections-v1", "detector": "...", "split": "...",
     "detections": {"<video_id>___<t>___<pid>": [[x1, y1, x2, y2, score, "category"], ...], ...}}

Boxes are normalised x1y1x2y2; the category is a COCO name ("N/A" only in a per-query cache, for a
query whose class has no COCO name). A cache is sorted by score, or, made with ``--per-query`` (the released
RefAtomNet code's layout), holds every DETR query in query order. Plain JSON (not a pickle) so that a cache
from elsewhere cannot run code. Written by the synthetic generator and tools/precompute_detections.py.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import DataError
from ..files.atomic import write_text_atomic
from .coco import COCO_ID

FORMAT = "ravar-detections-v1"
MAKER_TOOL = "tools/precompute_detections.py"


class DetectionsMissing(DataError, FileNotFoundError):
    pass


class DetectionsError(DataError, ValueError):
    """A malformed detections cache; the message names the file, the key and the field."""


def detections_path(root: str | Path, split: str) -> Path:
    return Path(root) / "detections" / f"{split}_detections.json"


def write_detections(root: str | Path, split: str, dets: dict, detector: str) -> Path:
    p = detections_path(root, split)
    write_text_atomic(p, json.dumps({"format": FORMAT, "detector": detector, "split": split, "detections": dets}))
    return p


def read_detections(root: str | Path, split: str) -> dict:
    p = detections_path(root, split)
    if not p.is_file():
        raise DetectionsMissing(f"no detections cache at {p}; this method reads key-frame detections. "
                                f"Make them with: python {MAKER_TOOL} --data-root {root} --split {split}")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DetectionsError(f"{p}: not valid JSON ({e}); re-make it with python {MAKER_TOOL}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        fmt = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise DetectionsError(f"{p}: field 'format' is {fmt!r}, expected {FORMAT!r}")
    dets = obj.get("detections")
    if not isinstance(dets, dict):
        raise DetectionsError(f"{p}: field 'detections' must map key -> list of detections")
    for key, rows in dets.items():
        if not isinstance(rows, list):
            raise DetectionsError(f"{p}: key {key!r}: expected a list of detections, got {type(rows).__name__} {rows!r:.60}")
        for r in rows:
            if (not isinstance(r, list) or len(r) != 6
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in r[:5])):
                raise DetectionsError(f"{p}: key {key!r}: a detection must be [x1, y1, x2, y2, score, category], "
                                      f"got {r!r:.80}")
            if not isinstance(r[5], str) or (r[5] not in COCO_ID and r[5] != "N/A"):  # "N/A": a per-query slot
                raise DetectionsError(f"{p}: key {key!r}: unknown COCO category {r[5]!r}")
            if not (0 <= r[0] <= r[2] <= 1 and 0 <= r[1] <= r[3] <= 1):
                raise DetectionsError(f"{p}: key {key!r}: detection box outside [0, 1] or with x2<x1 / y2<y1: {r[:4]}")
            if not 0 <= r[4] <= 1:  # a detector's confidence; 5 or -3 would reach the model as a feature
                raise DetectionsError(f"{p}: key {key!r}: field 'score' is {r[4]}, outside [0, 1]")
    return dets
