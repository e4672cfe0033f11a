"""The key-frame detections cache: one JSON file per split, key -> detections.

    DIR/detections/{split}_detections.json
    {"format": "ravar-detections-v1", "detector": "...", "split": "...",
     "detections": {"<video_id>___<t>___<pid>": [[x1, y1, x2, y2, score, "category"], ...], ...}}

Boxes are normalised x1y1x2y2; the category is a COCO name. Plain JSON (not a pickle) so that a cache
from elsewhere cannot run code. Written by the synthetic generator and tools/precompute_detections.py.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .coco import COCO_ID

FORMAT = "ravar-detections-v1"
MAKER_TOOL = "tools/precompute_detections.py"


class DetectionsMissing(FileNotFoundError):
    pass


def detections_path(root: str | Path, split: str) -> Path:
    return Path(root) / "detections" / f"{split}_detections.json"


def write_detections(root: str | Path, split: str, dets: dict, detector: str) -> Path:
    p = detections_path(root, split)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "detector": detector, "split": split, "detections": dets}))
    tmp.replace(p)
    return p


def read_detections(root: str | Path, split: str) -> dict:
    p = detections_path(root, split)
    if not p.is_file():
        raise DetectionsMissing(f"no detections cache at {p}; this method reads key-frame detections. "
                                f"Make them with: python {MAKER_TOOL} --data-root {root} --split {split}")
    obj = json.loads(p.read_text())
    if obj.get("format") != FORMAT:
        raise ValueError(f"{p}: field 'format' is {obj.get('format')!r}, expected {FORMAT!r}")
    dets = obj.get("detections")
    if not isinstance(dets, dict):
        raise ValueError(f"{p}: field 'detections' must map key -> list of detections")
    for key, rows in dets.items():
        for r in rows:
            if len(r) != 6 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in r[:5]):
                raise ValueError(f"{p}: key {key!r}: a detection must be [x1, y1, x2, y2, score, category], got {r!r}")
            if r[5] not in COCO_ID:
                raise ValueError(f"{p}: key {key!r}: unknown COCO category {r[5]!r}")
            if not (0 <= r[0] <= r[2] <= 1 and 0 <= r[1] <= r[3] <= 1):
                raise ValueError(f"{p}: key {key!r}: detection box outside [0, 1] or with x2<x1 / y2<y1: {r[:4]}")
    return dets
