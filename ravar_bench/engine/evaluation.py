"""Scoring one split: metrics in both protocols, bootstrap intervals, breakdowns and the controls.

- by people: mIoU / mAP over instances whose clip holds 1, 2, 3, 4 or 5+ annotated people (paper Fig. 2b);
- referring sensitivity (beyond the paper): in clips with >= 2 people every reference is swapped for
  another person's reference of the same clip and the instance is scored against its own labels and
  box; the drop (original - swapped) is ~0 for a method that ignores the text;
- rephrasing (paper Table 4a, when ``eval.rephrase``): metrics averaged over the original reference and
  two offline rephrasings;
- by the generator's factors (shared shirt colour, reference type, action type) and the static-clip and
  no-position-words controls: engine/diagnostics.py (RefAVA-Synth data only).
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from ..data.ava import group_columns
from ..data.paraphrase import load_attributes, rephrase
from ..scoring.metrics import evaluate
from ..scoring.stats import bootstrap_ci

PEOPLE_BUCKETS = ("1", "2", "3", "4", "5+")


def score_predictions(pred: dict, iou_gate=None) -> dict:
    """Both protocols (weighted = the authors', macro) and, unless ``iou_gate`` is None, the IoU-gated variant
    (``gated_*``; a gate of 0 is valid and keeps every score), with PM/OM/PI mAP."""
    groups = group_columns()
    args = (pred["scores"], pred["labels"], pred["boxes"], pred["gt_boxes"])
    res = evaluate(*args, "weighted", None, groups)
    macro = evaluate(*args, "macro", None, groups)
    res.update({f"macro_{k}": v for k, v in macro.items() if k.startswith(("mAP", "AUROC"))})
    if iou_gate is not None:
        gated = evaluate(*args, "weighted", float(iou_gate))
        res.update({f"gated_{k}": v for k, v in gated.items() if k in ("mAP", "AUROC")})
    return res


def subset(pred: dict, idx) -> dict:
    idx = np.asarray(idx, dtype=int)
    return {k: ([v[i] for i in idx] if k == "keys" else v[idx]) for k, v in pred.items()}


def core_metrics(pred: dict) -> dict:
    r = evaluate(pred["scores"], pred["labels"], pred["boxes"], pred["gt_boxes"])
    return {k: r[k] for k in ("mIoU", "mAP", "AUROC")}


def people_per_instance(instances) -> dict:
    per_clip = defaultdict(int)
    for i in instances:
        per_clip[i.clip_key] += 1
    return {i.key: per_clip[i.clip_key] for i in instances}


def by_people(pred: dict, instances) -> dict:
    n = people_per_instance(instances)
    out = {}
    for b in PEOPLE_BUCKETS:
        idx = [k for k, key in enumerate(pred["keys"]) if (str(n[key]) == b or (b == "5+" and n[key] >= 5))]
        out[f"n_p{b}"] = len(idx)
        if idx:
            r = core_metrics(subset(pred, idx))
            out[f"mIoU_p{b}"], out[f"mAP_p{b}"] = r["mIoU"], r["mAP"]
    return out


def swapped_references(instances) -> list:
    """Instances of clips with >= 2 people, each carrying the NEXT person's reference (cyclic by person id)."""
    clips = defaultdict(list)
    for i in instances:
        clips[i.clip_key].append(i)
    out = []
    for members in clips.values():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda i: i.person_id)
        for k, inst in enumerate(members):
            out.append(dataclasses.replace(inst, text=members[(k + 1) % len(members)].text))
    return out


def swap_control(pred: dict, pred_swapped: dict) -> dict:
    pos = {k: i for i, k in enumerate(pred["keys"])}
    orig = core_metrics(subset(pred, [pos[k] for k in pred_swapped["keys"]]))
    swap = core_metrics(pred_swapped)
    out = {"swap_n": len(pred_swapped["keys"])}
    for m in ("mIoU", "mAP", "AUROC"):
        out[f"swap_{m}"] = swap[m]
        out[f"swap_drop_{m}"] = orig[m] - swap[m]
    return out


def rephrased_instances(instances, variant: int, root, seed: int = 0) -> list:
    attrs = load_attributes(root)
    return [dataclasses.replace(i, text=rephrase(i.text, variant, seed, attrs.get(i.key))) for i in instances]


def confidence_intervals(pred: dict, n_boot: int, seed: int = 0) -> dict:
    ci = bootstrap_ci(pred, n_boot=n_boot, seed=seed)
    out = {}
    for m, (lo, hi) in ci.items():
        out[f"{m}_ci_lo"], out[f"{m}_ci_hi"] = lo, hi
    return out
