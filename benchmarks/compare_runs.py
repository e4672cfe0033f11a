#!/usr/bin/env python
"""Whether two main jobs give the same rows for the methods whose inputs did not change, and how fast each machine was.

A lever that remakes some methods' starting points leaves the other methods' rows as they were, so a new run on
another machine reproduces the committed leaderboard there exactly for those methods, or the machine differs
(benchmarks/default_levers.md: how e18 and e19 were judged on one machine). Per method present in both: the largest
absolute difference over the metric columns (every numeric column except times, speeds and provenance), and the
summed training time of each run.

    python benchmarks/compare_runs.py NEW/results.csv OLD/results.csv [METHOD ...]   (default: every shared method)
    python benchmarks/compare_runs.py /work/budget_e19/synth0/results.csv leaderboard/default/results.csv i3d x3d
"""
import sys

import pandas as pd

NOT_METRICS = ("train_time_s", "eval_time_s", "train_clips_per_s", "git_dirty", "p_n_boot")

if len(sys.argv) < 3:
    sys.exit(__doc__)
new, old = (pd.read_csv(p) for p in sys.argv[1:3])
key = ["method", "split", "seed"]
shared = sorted(set(new["method"]) & set(old["method"]))
methods = sys.argv[3:] or shared
missing = [m for m in methods if m not in shared]
if missing:
    sys.exit(f"compare_runs: not in both runs: {', '.join(missing)} (both hold: {', '.join(shared)})")
both = new[new["method"].isin(methods)].merge(old[old["method"].isin(methods)], on=key, suffixes=("", "_old"))
cols = [c for c in new.select_dtypes("number").columns if c not in key and c not in NOT_METRICS and
        f"{c}_old" in both]
print(f"{'method':14s} {'rows':>4s} {'largest metric difference':>26s}  {'train s (new / old)':>20s}")
worst = 0.0
for m, g in both.groupby("method"):
    # a value on one side and NaN on the other is a difference; NaN on both is not
    diff = max(float((g[c] - g[f"{c}_old"]).abs().fillna(0.0).mask(g[c].isna() != g[f"{c}_old"].isna(),
                                                                     float("inf")).max()) for c in cols)
    worst = max(worst, diff)
    t_new, t_old = g["train_time_s"].iloc[0], g["train_time_s_old"].iloc[0]
    print(f"{m:14s} {len(g):4d} {diff:26.6g}  {t_new:9.1f} / {t_old:8.1f}")
tn = both.drop_duplicates("method")["train_time_s"].sum()
to = both.drop_duplicates("method")["train_time_s_old"].sum()
print(f"\n{len(methods)} methods, {len(cols)} metric columns: largest difference {worst:.6g}; "
      f"summed training time {tn:.1f} s against {to:.1f} s (ratio {tn / to:.3f})")
