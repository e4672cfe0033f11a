"""Diagnostic breakdowns by the generator's factors, and two construct-validity controls that are not methods.

The factors come from ROOT/factors.json, which RefAVA-Synth writes beside the annotations and no loader
reads, so no method ever sees them; a data root without it (the real RefAVA) gets none of these columns.
Columns added to a result row (percent, ``n_`` columns count instances):

- ``mIoU_`` / ``mAP_colour_{shared,distinct}``: whether another person of the clip wears the referent's
  shirt colour (then only the sentence's position or size word tells them apart);
- ``mIoU_`` / ``mAP_ref_{appearance,position,both}``: what the reference names;
- ``mAP_act_{static,motion,object,interaction}``: mAP over the classes of one action type (all instances);
  the number of people per clip is ``mIoU_p1``.. of :func:`evaluation.by_people`.

Controls, on :data:`CONTROL_SPLITS` only (each is one more prediction pass; the test split is what the
leaderboard reads):

- static clip (``eval.static_control``): every frame of the clip replaced by the key frame. ``static_mAP``,
  ``static_drop_mAP`` and ``static_drop_mAP_act_<type>`` (original - static). Motion classes should drop;
  if they do not, the method reads them from one frame. Not run for methods that read no clip.
- no position words (``eval.no_position_control``): on shared-colour instances the sentence with its
  position and size words removed (``nopos_n``, ``nopos_mIoU``, ``nopos_drop_mIoU``, ``nopos_drop_mAP``).
  A method that uses those words loses mIoU; a sentence left with only the shared colour cannot say who.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import torch

from ..data.synthetic import FACTORS_FILE
from ..scoring.metrics import evaluate

CONTROL_SPLITS = ("test",)
ACTION_TYPES = ("static", "motion", "object", "interaction")
REF_TYPES = ("appearance", "position", "both")

_FACTORS: dict = {}


def load_factors(root) -> dict | None:
    """ROOT/factors.json (cached per path and modification time), or None when the root has none."""
    p = Path(root) / FACTORS_FILE
    if not p.is_file():
        return None
    stamp = (str(p.resolve()), p.stat().st_mtime_ns)
    if stamp not in _FACTORS:
        data = json.loads(p.read_text())
        for field in ("instances", "action_types"):
            if field not in data:
                raise ValueError(f"{p}: no '{field}' field; regenerate the data")
        _FACTORS.clear()
        _FACTORS[stamp] = data
    return _FACTORS[stamp]


def _subset(pred: dict, idx) -> dict:
    idx = np.asarray(idx, dtype=int)
    return {k: ([v[i] for i in idx] if k == "keys" else v[idx]) for k, v in pred.items()}


def action_type_columns(factors: dict) -> dict[str, list[int]]:
    """Action type -> 0-based score columns of its classes."""
    out = {t: [] for t in ACTION_TYPES}
    for aid, kind in factors["action_types"].items():
        out.setdefault(kind, []).append(int(aid) - 1)
    return {t: sorted(c) for t, c in out.items() if c}


def _instance_factors(pred: dict, factors: dict) -> list[dict]:
    inst = factors["instances"]
    missing = [k for k in pred["keys"] if k not in inst]
    if missing:
        raise KeyError(f"{FACTORS_FILE} lacks {len(missing)} scored instance keys (first: {missing[0]}); "
                       f"the data root and its factors file do not belong together")
    return [inst[k] for k in pred["keys"]]


def _metrics(pred: dict, groups=None) -> dict:
    return evaluate(pred["scores"], pred["labels"], pred["boxes"], pred["gt_boxes"], class_groups=groups)


def breakdowns(pred: dict, factors: dict) -> dict:
    """mIoU / mAP by shared colour and reference type, mAP by action type."""
    fac = _instance_factors(pred, factors)
    out = {}
    cells = [("colour", lambda f: "shared" if f["shared_colour"] else "distinct", ("shared", "distinct")),
             ("ref", lambda f: f["ref_type"], REF_TYPES)]
    for name, value, levels in cells:
        vals = [value(f) for f in fac]
        for lv in levels:
            idx = [i for i, v in enumerate(vals) if v == lv]
            out[f"n_{name}_{lv}"] = len(idx)
            if idx:
                r = _metrics(_subset(pred, idx))
                out[f"mIoU_{name}_{lv}"], out[f"mAP_{name}_{lv}"] = r["mIoU"], r["mAP"]
    r = _metrics(pred, {f"act_{t}": c for t, c in action_type_columns(factors).items()})
    out.update({k: v for k, v in r.items() if k.startswith("mAP_act_") and np.isfinite(v)})
    return out


class KeyFrameClip(torch.nn.Module):
    """The static-clip control: the wrapped model sees every frame of its clip replaced by the key frame.

    The key frame is frame T // 2 of the clip (data.frames.sample_indices centres clips on it). The clip keys
    change too, so that a frozen-feature cache (keyed by clip) computes the static clip instead of
    returning the moving one's features.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.needs = model.needs

    def forward(self, batch: dict):
        batch = dict(batch, clip_key=[f"{c}#static" for c in batch["clip_key"]])
        for key in ("video", "video_full"):  # the actor pass's stored-resolution clip too
            if key in batch:
                v = batch[key]
                batch[key] = v[:, v.shape[1] // 2:v.shape[1] // 2 + 1].expand_as(v).contiguous()
        return self.model(batch)


def strip_position(text: str, fields: dict) -> str:
    """``text`` without its position phrase and size word (the generator's fields say which they are)."""
    out = text
    for phrase in (fields.get("pos_cap"), fields.get("pos"), fields.get("size")):
        if phrase:
            out = re.sub(rf"\b{re.escape(phrase)}\b", " ", out)
    out = re.sub(r"\s+,", ",", re.sub(r"\s+", " ", out))
    out = re.sub(r",(\s*,)+", ",", out).strip(" ,")
    return out


def no_position_instances(instances, root) -> list:
    """The shared-colour instances of ``instances``, each with its sentence's position and size words removed."""
    factors = load_factors(root)
    attrs_path = Path(root) / "attributes.json"
    if factors is None or not attrs_path.is_file():
        return []
    attrs = json.loads(attrs_path.read_text())
    fac = factors["instances"]
    return [dataclasses.replace(i, text=strip_position(i.text, attrs[i.key])) for i in instances
            if fac.get(i.key, {}).get("shared_colour") and i.key in attrs]


def control_predictions(run, model, source, split: str, e) -> dict:
    """The controls' prediction passes (every rank runs them: predictions are gathered across ranks).

    ``run(instances, tag, net)`` is the caller's pass: it predicts (and saves) ``instances`` of ``split``
    (all when None) with ``net`` (the model when None).
    """
    if split not in CONTROL_SPLITS or load_factors(source.root) is None:
        return {}
    out = {}
    if e.get("static_control", False) and "video" in model.needs:
        out["static"] = run(None, "__static", KeyFrameClip(model))
    if e.get("no_position_control", False):
        insts = no_position_instances(source.splits[split], source.root)
        if insts:
            out["nopos"] = run(insts, "__nopos", None)
    return out


def control_metrics(pred: dict, controls: dict, factors: dict) -> dict:
    out = {}
    if "static" in controls:
        groups = {f"act_{t}": c for t, c in action_type_columns(factors).items()}
        orig = _metrics(pred, groups)
        stat = _metrics(_subset(controls["static"], _positions(controls["static"], pred["keys"])), groups)
        out["static_mAP"], out["static_drop_mAP"] = stat["mAP"], orig["mAP"] - stat["mAP"]
        out["static_drop_mIoU"] = orig["mIoU"] - stat["mIoU"]
        for g in groups:
            if np.isfinite(orig[f"mAP_{g}"]):
                out[f"static_drop_mAP_{g}"] = orig[f"mAP_{g}"] - stat[f"mAP_{g}"]
    if "nopos" in controls:
        nop = controls["nopos"]
        orig = _metrics(_subset(pred, _positions(pred, nop["keys"])))
        res = _metrics(nop)
        out["nopos_n"] = len(nop["keys"])
        out["nopos_mIoU"], out["nopos_drop_mIoU"] = res["mIoU"], orig["mIoU"] - res["mIoU"]
        out["nopos_drop_mAP"] = orig["mAP"] - res["mAP"]
    return out


def _positions(pred: dict, keys) -> list[int]:
    pos = {k: i for i, k in enumerate(pred["keys"])}
    return [pos[k] for k in keys]


def diagnostics(pred: dict, source, split: str, controls: dict | None = None) -> dict:
    """Every diagnostic column for one split's predictions; {} on data without a factors file."""
    factors = load_factors(source.root)
    if factors is None:
        return {}
    return {**breakdowns(pred, factors), **control_metrics(pred, controls or {}, factors)}
