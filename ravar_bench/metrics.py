"""The one metrics module: mAP, AUROC (multi-label, 80 classes) and mIoU, in percent.

Imports nothing of ours (numpy and scipy only). The authors' protocol (refava-format.md):
  mAP   = sklearn average_precision_score(y, s, average="weighted")
  AUROC = sklearn roc_auc_score(y, s, average="weighted")
both after dropping classes with no positive in the evaluated set; "weighted" = per-class values
weighted by support (number of positives). ``average="macro"`` is the plain mean over kept classes.
AUROC additionally needs a negative: a class whose every instance is positive has no ROC curve
(scikit-learn raises on it) and is left out of AUROC only (its AP, 1.0, stays in mAP).
mIoU is the mean over INSTANCES of the key-frame box IoU (the authors average per batch, which is
biased when the last batch is smaller). ``iou_gate=0.5`` reproduces their "camera ready" test script:
an instance's action scores are multiplied by 0 when its box IoU is below the gate.

Why not call scikit-learn here: its per-class loop is slow on 10,916 x 80 scores and the benchmarks
need evaluate() ~10x faster; the vectorised forms below are checked against scikit-learn and
torchmetrics to 1e-6 in tests/test_metrics.py.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def box_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Row-wise IoU of x1y1x2y2 boxes (N, 4); degenerate predictions (x2<x1) have zero area."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    ix1, iy1 = np.maximum(pred[:, 0], gt[:, 0]), np.maximum(pred[:, 1], gt[:, 1])
    ix2, iy2 = np.minimum(pred[:, 2], gt[:, 2]), np.minimum(pred[:, 3], gt[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_p = np.clip(pred[:, 2] - pred[:, 0], 0, None) * np.clip(pred[:, 3] - pred[:, 1], 0, None)
    area_g = np.clip(gt[:, 2] - gt[:, 0], 0, None) * np.clip(gt[:, 3] - gt[:, 1], 0, None)
    union = area_p + area_g - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def average_precision_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-column AP exactly as sklearn's average_precision_score (step-wise, ties as one threshold).

    AP = sum_k (R_k - R_{k-1}) P_k over the DISTINCT score thresholds k in descending order. Columns with
    no positive give NaN.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n, c = s.shape
    order = np.argsort(-s, axis=0, kind="mergesort")
    s_sorted = np.take_along_axis(s, order, axis=0)
    y_sorted = np.take_along_axis(y, order, axis=0)
    tp = np.cumsum(y_sorted, axis=0, dtype=np.float64)
    fp = np.arange(1, n + 1, dtype=np.float64)[:, None] - tp
    # the last row of each run of tied scores is where a threshold takes effect
    last_of_tie = np.ones((n, c), dtype=bool)
    last_of_tie[:-1] = s_sorted[:-1] != s_sorted[1:]
    tp_at = np.where(last_of_tie, tp, 0.0)
    prev_tp = np.zeros_like(tp)
    prev_tp[1:] = np.maximum.accumulate(tp_at, axis=0)[:-1]
    precision = tp / (tp + fp)
    pos = y.sum(axis=0).astype(np.float64)
    contrib = np.where(last_of_tie, (tp - prev_tp) * precision, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pos > 0, contrib.sum(axis=0) / pos, np.nan)


def roc_auc_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-column ROC AUC via the Mann-Whitney rank statistic (ties count one half), equal to sklearn's
    trapezoidal roc_auc_score. Columns lacking positives or negatives give NaN."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    ranks = rankdata(s, axis=0, method="average")
    pos = y.sum(axis=0).astype(np.float64)
    neg = y.shape[0] - pos
    rank_sum = np.where(y, ranks, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
    return np.where((pos > 0) & (neg > 0), auc, np.nan)


def _average(values: np.ndarray, support: np.ndarray, average: str) -> float:
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    if average == "weighted":
        return float(np.average(values[keep], weights=support[keep]))
    return float(values[keep].mean())


def evaluate(scores, labels, pred_boxes, gt_boxes, average: str = "weighted", iou_gate: float | None = None,
             class_groups: dict | None = None) -> dict:
    """Metrics in percent: "mAP", "AUROC", "mIoU", plus "mAP_<group>" for each of ``class_groups``
    (name -> 0-based column indices; e.g. PM / OM / PI) and bookkeeping counts.

    scores (N, C) raw logits or probabilities (ranking metrics do not care), labels (N, C) {0, 1},
    pred_boxes / gt_boxes (N, 4) normalised x1y1x2y2.
    """
    if average not in ("weighted", "macro"):
        raise ValueError(f"average must be 'weighted' or 'macro', got {average!r}")
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    pb, gb = np.asarray(pred_boxes, dtype=np.float64), np.asarray(gt_boxes, dtype=np.float64)
    if s.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} must both be (N, C)")
    if pb.shape != (s.shape[0], 4) or gb.shape != pb.shape:
        raise ValueError(f"boxes must be (N, 4) with N={s.shape[0]}, got {pb.shape} and {gb.shape}")
    if s.shape[0] == 0:
        raise ValueError("evaluate() got no instances")
    if not np.isfinite(s).all():
        raise ValueError(f"scores hold {int((~np.isfinite(s)).sum())} non-finite values")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    iou = box_iou(pb, gb)
    if iou_gate is not None:
        s = s * (iou >= iou_gate)[:, None]
    support = y.sum(axis=0).astype(np.float64)
    ap = average_precision_per_class(s, y)
    auc = roc_auc_per_class(s, y)
    out = {
        "mAP": 100 * _average(ap, support, average),
        "AUROC": 100 * _average(auc, support, average),
        "mIoU": 100 * float(iou.mean()),
        "n_instances": int(s.shape[0]),
        "n_classes_scored": int((support > 0).sum()),
    }
    for g, cols in (class_groups or {}).items():
        cols = np.asarray(cols, dtype=int)
        out[f"mAP_{g}"] = 100 * _average(ap[cols], support[cols], average)
    return out


def per_class_ap(scores, labels) -> np.ndarray:
    """Per-class AP in percent (NaN where a class has no positive), for per-class plots."""
    return 100 * average_precision_per_class(scores, labels)
