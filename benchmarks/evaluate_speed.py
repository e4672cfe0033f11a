#!/usr/bin/env python
"""evaluate() on the val set's size (10,916 x 80) against the per-class scikit-learn loop the authors' protocol
implies (average_precision_score / roc_auc_score, average="weighted"). Prints both times, the speed-up and the
largest difference. Target: >= 10x faster, equal to 1e-6.

    python benchmarks/evaluate_speed.py [--n 10916] [--repeats 3]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ravar_bench.scoring.metrics import evaluate  # noqa: E402


def sklearn_protocol(scores, labels):
    keep = labels.sum(0) > 0
    ap = average_precision_score(labels[:, keep], scores[:, keep], average="weighted")
    keep &= labels.sum(0) < len(labels)
    auc = roc_auc_score(labels[:, keep], scores[:, keep], average="weighted")
    return 100 * ap, 100 * auc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10916)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    prev = rng.uniform(0.002, 0.3, 80)  # AVA-like long tail of class frequencies
    labels = (rng.random((args.n, 80)) < prev).astype(np.int8)
    scores = np.round(rng.normal(size=(args.n, 80)) + 1.5 * labels, 2).astype(np.float32)  # with ties
    boxes = np.tile([0.1, 0.1, 0.5, 0.5], (args.n, 1))

    def best(fn):
        t = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn()
            t.append(time.perf_counter() - t0)
        return min(t), out

    t_ours, ours = best(lambda: evaluate(scores, labels, boxes, boxes))
    t_sk, (ap_sk, auc_sk) = best(lambda: sklearn_protocol(scores, labels))
    print(f"instances x classes:        {args.n} x 80")
    print(f"ravar_bench.scoring.metrics:        {t_ours * 1000:8.1f} ms  (mAP {ours['mAP']:.6f}, AUROC {ours['AUROC']:.6f})")
    print(f"scikit-learn per class:     {t_sk * 1000:8.1f} ms  (mAP {ap_sk:.6f}, AUROC {auc_sk:.6f})")
    print(f"speed-up:                   {t_sk / t_ours:8.1f} x   (target >= 10x)")
    print(f"max |difference| (percent): {max(abs(ours['mAP'] - ap_sk), abs(ours['AUROC'] - auc_sk)):.2e} (target <= 1e-6 x 100)")


if __name__ == "__main__":
    main()
