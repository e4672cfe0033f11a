"""How sure a number is: bootstrap confidence intervals over instances and a paired bootstrap test.

Percentile bootstrap (Efron & Tibshirani, ch. 13): resample instances with replacement, recompute the
metric, take the 2.5 / 97.5 percentiles. The paired test resamples the SAME instances for both methods
and reports the two-sided p-value of "no difference" as twice the smaller tail of the differences.
scipy.stats.bootstrap handles one statistic of independent samples; our statistic (weighted mAP over
80 columns of a matrix, paired between methods) needs the index-level resampling written here.
"""
from __future__ import annotations

import numpy as np

from .metrics import evaluate

METRICS = ("mIoU", "mAP", "AUROC")


def _metric_values(pred: dict, idx: np.ndarray, average: str) -> dict:
    r = evaluate(pred["scores"][idx], pred["labels"][idx], pred["boxes"][idx], pred["gt_boxes"][idx], average=average)
    return {m: r[m] for m in METRICS}


def bootstrap_samples(pred: dict, n_boot: int = 1000, seed: int = 0, average: str = "weighted",
                      indices: np.ndarray | None = None) -> dict:
    """metric -> array of n_boot bootstrap values (``indices``: pre-drawn (n_boot, N) resamples)."""
    n = len(pred["scores"])
    rng = np.random.default_rng(seed)
    idx = indices if indices is not None else rng.integers(0, n, size=(n_boot, n))
    out = {m: np.empty(len(idx)) for m in METRICS}
    for b, row in enumerate(idx):
        vals = _metric_values(pred, row, average)
        for m in METRICS:
            out[m][b] = vals[m]
    return out


def bootstrap_ci(pred: dict, n_boot: int = 1000, seed: int = 0, level: float = 0.95, average: str = "weighted") -> dict:
    """metric -> (low, high) percentile interval; NaN resamples (e.g. no negative for AUROC) are ignored."""
    samples = bootstrap_samples(pred, n_boot, seed, average)
    a = (1 - level) / 2 * 100
    return {m: (float(np.nanpercentile(v, a)), float(np.nanpercentile(v, 100 - a))) for m, v in samples.items()}


def align(pred_a: dict, pred_b: dict) -> tuple[dict, dict]:
    """Both predictions restricted to their common keys, in one order (for paired tests)."""
    ka, kb = list(pred_a["keys"]), list(pred_b["keys"])
    common = sorted(set(ka) & set(kb))
    if not common:
        raise ValueError("the two prediction sets share no instance keys")
    ia = {k: i for i, k in enumerate(ka)}
    ib = {k: i for i, k in enumerate(kb)}
    sa, sb = np.array([ia[k] for k in common]), np.array([ib[k] for k in common])
    pick = lambda p, s: {k: (np.asarray(v)[s] if k != "keys" else [p["keys"][i] for i in s]) for k, v in p.items()}
    return pick(pred_a, sa), pick(pred_b, sb)


def paired_bootstrap_p(pred_a: dict, pred_b: dict, n_boot: int = 1000, seed: int = 0,
                       average: str = "weighted") -> dict:
    """metric -> two-sided p-value that methods A and B score the same, over the same resampled instances."""
    a, b = align(pred_a, pred_b)
    n = len(a["scores"])
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    sa, sb = bootstrap_samples(a, indices=idx, average=average), bootstrap_samples(b, indices=idx, average=average)
    out = {}
    for m in METRICS:
        d = sa[m] - sb[m]
        d = d[~np.isnan(d)]
        if len(d) == 0 or np.all(d == 0):
            out[m] = 1.0
            continue
        out[m] = float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))
    return out
