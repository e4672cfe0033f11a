#!/usr/bin/env python
"""What the default main job costs and whether its leaderboard measures something (issue 12's criteria 1-4).

Runs the default main job (`tools/run_bench.py --methods all`, one training seed) once per data seed, each
from a FRESH cache folder (data generation included), and prints per run the wall time and peak memory, then:

  1 referring: per Table-2 method that reads the sentence, test mIoU minus the chance control's with its
    paired-bootstrap p, and the referring-swap drop of test mIoU with its paired-bootstrap p
    (ravar_bench.scoring.stats.paired_bootstrap_p over the two prediction files); met when all are > 0 with p < 0.01;
  2 actions: best and median test mAP minus chance, and how many methods beat chance with p < 0.01
    (met: best >= 15 points, median >= 8, at least 14 of 16);
  3 stability: Spearman's rho of the test rankings by mAP and by mIoU between the two data seeds (met: >= 0.7);
  4 cost: wall < 15 min and peak < 4 GB per run.

    python benchmarks/default_budget.py                                # the default: data seeds 0 and 1
    python benchmarks/default_budget.py --methods x3d,clip4clip --epochs 1 --synth-movies 4,2,2 --out /tmp/b
    python benchmarks/default_budget.py --criteria-only RUN0 RUN1      # criteria of existing run folders
    python benchmarks/default_budget.py --dry                          # print the commands only

Time it with nothing else running on the machine. Peak memory: the largest resident set of the job's
process tree (os.wait4's ru_maxrss). Writes OUT/budget.json as well.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ravar_bench.errors import UsageError  # noqa: E402  (one line on stderr, exit code 2)
from ravar_bench.registry import TABLE2_FAMILIES, method_info  # noqa: E402
from ravar_bench.scoring.stability import compare_runs  # noqa: E402
from ravar_bench.scoring.stats import paired_bootstrap_p  # noqa: E402

TEXT_KEYS = {"text", "text_emb", "text_tokens"}
CHANCE = "chance"
P_LEVEL = 0.01


def run_job(out: Path, synth_seed: int, methods: str, epochs: int | None, synth_movies: str | None,
            dry: bool = False) -> dict:
    """One main job in a fresh output and cache folder; wall seconds and peak resident memory (GiB)."""
    run_dir, cache = out / f"synth{synth_seed}", out / f"cache_synth{synth_seed}"
    cmd = [sys.executable, str(ROOT / "tools" / "run_bench.py"), "--methods", methods, "--synth-seed", str(synth_seed),
           "--out", str(run_dir), "--no-progress"]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    if synth_movies:
        cmd += ["--synth-movies", synth_movies]
    print(f"RAVAR_CACHE={cache} " + " ".join(cmd), flush=True)
    if dry:
        return {"dir": str(run_dir)}
    for d in (run_dir, cache):  # fresh: no reused results, data generated anew
        if d.exists():
            shutil.rmtree(d)
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "RAVAR_CACHE": str(cache)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    rc = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux: the largest resident set among the job and the children it waited for
    return {"dir": str(run_dir), "rc": rc, "wall_s": wall, "peak_rss_gib": usage.ru_maxrss / 2 ** 20}


def _load(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: (z[k].tolist() if k == "keys" else z[k]) for k in z.files}


def _pred(run_dir: Path, method: str, tag: str = "", seed: int = 0) -> dict | None:
    p = run_dir / "predictions" / f"{method}__test__seed{seed}{tag}.npz"
    return _load(p) if p.is_file() else None


def _metric(pred: dict, name: str) -> float:
    from ravar_bench.scoring.metrics import evaluate

    return evaluate(pred["scores"], pred["labels"], pred["boxes"], pred["gt_boxes"])[name]


def table2_methods(run_dir: Path) -> list[str]:
    """The Table-2 methods with test predictions in ``run_dir`` (first training seed)."""
    names = sorted({p.name.split("__")[0] for p in (run_dir / "predictions").glob("*__test__seed0.npz")})
    out = []
    for n in names:
        try:
            if method_info(n).family in TABLE2_FAMILIES:
                out.append(n)
        except KeyError:
            pass
    return out


def criteria_12(run_dir: Path, n_boot: int) -> dict:
    """Criteria 1 and 2 of one run folder, from its test prediction files."""
    chance = _pred(run_dir, CHANCE)
    if chance is None:
        raise UsageError(f"{run_dir}: no predictions/{CHANCE}__test__seed0.npz; the chance control must be run")
    base = {m: _metric(chance, m) for m in ("mIoU", "mAP")}
    rows = []
    for m in table2_methods(run_dir):
        pred = _pred(run_dir, m)
        reads_text = bool(set(method_info(m).cls.needs) & TEXT_KEYS)
        vs = paired_bootstrap_p(pred, chance, n_boot=n_boot)
        row = {"method": m, "reads_text": reads_text, "mIoU": _metric(pred, "mIoU"), "mAP": _metric(pred, "mAP"),
               "p_chance_mIoU": vs["mIoU"], "p_chance_mAP": vs["mAP"]}
        row["mIoU_vs_chance"], row["mAP_vs_chance"] = row["mIoU"] - base["mIoU"], row["mAP"] - base["mAP"]
        swap = _pred(run_dir, m, "__swap")
        if swap is not None:
            keep = set(swap["keys"])
            idx = [i for i, k in enumerate(pred["keys"]) if k in keep]
            orig = {k: ([v[i] for i in idx] if k == "keys" else v[idx]) for k, v in pred.items()}
            row["swap_drop_mIoU"] = _metric(orig, "mIoU") - _metric(swap, "mIoU")
            row["p_swap_mIoU"] = paired_bootstrap_p(orig, swap, n_boot=n_boot)["mIoU"]
        rows.append(row)
    text_rows = [r for r in rows if r["reads_text"]]
    c1_pass = [r["method"] for r in text_rows
               if r["mIoU_vs_chance"] > 0 and r["p_chance_mIoU"] < P_LEVEL
               and r.get("swap_drop_mIoU", 0) > 0 and r.get("p_swap_mIoU", 1) < P_LEVEL]
    gains = np.array([r["mAP_vs_chance"] for r in rows])
    beat = [r["method"] for r in rows if r["mAP_vs_chance"] > 0 and r["p_chance_mAP"] < P_LEVEL]
    return {
        "chance": base, "rows": rows,
        "c1": {"methods_reading_text": len(text_rows), "passing": len(c1_pass),
               "met": len(text_rows) > 0 and len(c1_pass) == len(text_rows)},
        "c2": {"best": float(gains.max()) if len(gains) else float("nan"),
               "median": float(np.median(gains)) if len(gains) else float("nan"),
               "beat_chance_p01": len(beat), "methods": len(rows),
               "met": bool(len(gains)) and gains.max() >= 15 and np.median(gains) >= 8 and len(beat) >= min(14, len(rows))},
    }


def report(runs: list[dict], dirs: list[Path], n_boot: int) -> dict:
    summary = {"runs": runs, "criteria": {}}
    for r in runs:
        if "wall_s" in r:
            ok = r["rc"] == 0 and r["wall_s"] < 15 * 60 and r["peak_rss_gib"] < 4
            print(f"\n[{Path(r['dir']).name}] exit {r['rc']}, wall {r['wall_s']:.0f} s ({r['wall_s'] / 60:.1f} min), "
                  f"peak memory {r['peak_rss_gib']:.2f} GiB   criterion 4 (< 15 min, < 4 GB): "
                  f"{'met' if ok else 'NOT met'}")
    for d in dirs:
        c = criteria_12(d, n_boot)
        summary["criteria"][d.name] = c
        print(f"\n[{d.name}] chance control: test mIoU {c['chance']['mIoU']:.2f}, test mAP {c['chance']['mAP']:.2f}")
        print(f"{'method':22s} {'mIoU-ch':>8s} {'p':>7s} {'swapdrop':>9s} {'p':>7s} {'mAP-ch':>8s} {'p':>7s}")
        for r in c["rows"]:
            print(f"{r['method']:22s} {r['mIoU_vs_chance']:8.2f} {r['p_chance_mIoU']:7.3f} "
                  f"{r.get('swap_drop_mIoU', float('nan')):9.2f} {r.get('p_swap_mIoU', float('nan')):7.3f} "
                  f"{r['mAP_vs_chance']:8.2f} {r['p_chance_mAP']:7.3f}" + ("" if r["reads_text"] else "  (no text)"))
        c1, c2 = c["c1"], c["c2"]
        print(f"criterion 1 (referring): {c1['passing']}/{c1['methods_reading_text']} methods that read the sentence "
              f"beat chance on test mIoU and drop under the swap, both p < {P_LEVEL}: {'met' if c1['met'] else 'NOT met'}")
        print(f"criterion 2 (actions): test mAP - chance: best {c2['best']:.2f} (>= 15), median {c2['median']:.2f} "
              f"(>= 8); {c2['beat_chance_p01']}/{c2['methods']} beat chance with p < {P_LEVEL} (>= 14): "
              f"{'met' if c2['met'] else 'NOT met'}")
    if len(dirs) >= 2:
        comp = compare_runs(dirs[0], dirs[1])
        summary["criteria"]["stability"] = comp
        met = all(c["rho"] >= 0.7 for c in comp.values())
        print(f"\ncriterion 3 (stability, {dirs[0].name} vs {dirs[1].name}): Spearman rho test mAP "
              f"{comp['mAP']['rho']:.2f}, test mIoU {comp['mIoU']['rho']:.2f} over {comp['mAP']['n']} methods "
              f"(>= 0.7 both): {'met' if met else 'NOT met'}")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="work_dirs/default_budget", help="folder for the runs (each run's subfolder "
                                                                      "and cache are deleted first)")
    ap.add_argument("--synth-seeds", default="0,1", help="data seeds, one main job each")
    ap.add_argument("--methods", default="all", help="as run_bench.py; the chance control is always added")
    ap.add_argument("--epochs", type=int, default=None, help="override the configs' epochs (a small try)")
    ap.add_argument("--synth-movies", default=None, help="train,val,test movies (a small try; default: the job's)")
    ap.add_argument("--n-boot", type=int, default=500, help="resamples of each paired bootstrap test")
    ap.add_argument("--criteria-only", nargs="+", default=None, metavar="RUN_DIR",
                    help="only compute the criteria of existing run folders (1 or 2)")
    ap.add_argument("--dry", action="store_true", help="print the commands and exit")
    args = ap.parse_args(argv)
    if args.criteria_only:
        dirs = [Path(d) for d in args.criteria_only]
        missing = [str(d) for d in dirs if not (d / "predictions").is_dir()]
        if missing:
            raise UsageError(f"--criteria-only: no predictions/ folder in {', '.join(missing)}")
        report([], dirs, args.n_boot)
        return 0
    try:
        seeds = [int(s) for s in args.synth_seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--synth-seeds: expected comma-separated integers, got {args.synth_seeds!r}") from None
    methods = args.methods if args.methods == "all" or CHANCE in args.methods.split(",") else f"{args.methods},{CHANCE}"
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = [run_job(out, s, methods, args.epochs, args.synth_movies, args.dry) for s in seeds]
    if args.dry:
        return 0
    failed = [r for r in runs if r["rc"] != 0]
    summary = report(runs, [Path(r["dir"]) for r in runs if (Path(r["dir"]) / "predictions").is_dir()], args.n_boot)
    (out / "budget.json").write_text(json.dumps(summary, indent=1, default=float))
    print(f"\nsummary: {out / 'budget.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UsageError as e:
        print(f"default_budget.py: error: {e}", file=sys.stderr)
        sys.exit(2)
