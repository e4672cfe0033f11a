"""The one metrics module: mAP, AUROC (multi-label, 80 classes) and mIoU, in percent.

Imports nothing of ours (numpy only). The authors' protocol (refava-format.md):
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


def _ranking_per_class(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column AP and ROC AUC from ONE descending sort per column.

    AP exactly as sklearn's average_precision_score: sum_k (R_k - R_{k-1}) P_k over the DISTINCT score
    thresholds k (a run of tied scores is one threshold). AUC as the Mann-Whitney statistic with ties
    counted one half, which equals sklearn's trapezoidal roc_auc_score: per tie group g with tp_g positives
    and fp_g negatives, tp_g * (negatives scored lower) + tp_g * fp_g / 2, over P * N. Columns lacking
    positives give NaN for both; lacking negatives, NaN AUC.
    """
    s = np.asarray(scores)
    if s.dtype not in (np.float32, np.float64):
        s = s.astype(np.float64)
    # one row per class, contiguous: sorting and cumulating along the fast axis
    st = np.ascontiguousarray(s.T)
    yt = np.ascontiguousarray(np.asarray(labels).T, dtype=bool)
    c, n = st.shape
    order = np.argsort(-st, axis=1)
    s_sorted = np.take_along_axis(st, order, axis=1)
    tp = np.cumsum(np.take_along_axis(yt, order, axis=1), axis=1, dtype=np.int64)
    pos = tp[:, -1].astype(np.float64)
    neg = n - pos
    # the last row of each run of tied scores is where a threshold takes effect; work on those only
    last = np.ones((c, n), dtype=bool)
    last[:, :-1] = s_sorted[:, :-1] != s_sorted[:, 1:]
    row, col = np.nonzero(last)
    tp_end = tp[row, col].astype(np.float64)
    fp_end = (col + 1) - tp_end
    first = np.ones(len(row), dtype=bool)
    first[1:] = row[1:] != row[:-1]
    tp_prev = np.where(first, 0.0, np.concatenate([[0.0], tp_end[:-1]]))
    fp_prev = np.where(first, 0.0, np.concatenate([[0.0], fp_end[:-1]]))
    tp_g, fp_g = tp_end - tp_prev, fp_end - fp_prev
    ap_sum = np.bincount(row, weights=tp_g * tp_end / (tp_end + fp_end), minlength=c)
    auc_sum = np.bincount(row, weights=tp_g * (neg[row] - fp_end) + 0.5 * tp_g * fp_g, minlength=c)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(pos > 0, ap_sum / pos, np.nan)
        auc = np.where((pos > 0) & (neg > 0), auc_sum / (pos * neg), np.nan)
    return ap, auc


def average_precision_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-column AP exactly as sklearn's average_precision_score; NaN where a column has no positive."""
    return _ranking_per_class(scores, labels)[0]


def roc_auc_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-column ROC AUC equal to sklearn's roc_auc_score; NaN where a column lacks positives or negatives."""
    return _ranking_per_class(scores, labels)[1]


def _average(values: np.ndarray, support: np.ndarray, average: str) -> float:
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    if average == "weighted":
        return float(np.average(values[keep], weights=support[keep]))
    return float(values[keep].mean())


def evaluate(scores, labels, pred_boxes, gt_boxes, average: str = "weighted", iou_gate: float | None = None,
             class_groups: dict | None = None) -> dict:
    """Metrics in percent: "mAP", "AUROC", "mIoU", plus "mAP_<group>" for each of ``class_groups`` and bookkeeping
    counts ("n_instances", "n_classes_scored").

    Args:
        scores: (N, C) raw logits or probabilities (ranking metrics do not care).
        labels: (N, C) in {0, 1}.
        pred_boxes, gt_boxes: (N, 4) normalised x1, y1, x2, y2.
        average: ``"weighted"`` (the authors' protocol: per-class values weighted by support) or ``"macro"``.
        iou_gate: if given, an instance's scores are zeroed when its box IoU is below it (the authors' gated
            script: 0.5).
        class_groups: name -> 0-based class columns (e.g. PM / OM / PI), each scored as its own mAP.
    """
    if average not in ("weighted", "macro"):
        raise ValueError(f"average must be 'weighted' or 'macro', got {average!r}")
    s = np.asarray(scores)
    s = s if s.dtype in (np.float32, np.float64) else s.astype(np.float64)
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
    ap, auc = _ranking_per_class(s, y)
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
