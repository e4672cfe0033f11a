#!/usr/bin/env python
"""What the default main job costs and whether its leaderboard measures something (issue 23's criteria 1-6).

Runs the default main job (`tools/run_bench.py --methods all`, one training seed) once per data seed, each
from a FRESH cache folder (data generation included), and prints per run the wall time and peak memory, then:

  1 referring: per Table-2 method that reads the sentence, test mIoU minus the chance control's with its
    paired-bootstrap p, and the referring-swap drop of test mIoU with its paired-bootstrap p
    (ravar_bench.scoring.stats.paired_bootstrap_p over the two prediction files); met when all are > 0 with p < 0.01;
  2 appearance: the same against chance on the appearance-only references (factors.json's ref_type) only;
    met when at least 12 of the 16 beat chance there with p < 0.01;
  3 actions: best and median test mAP minus chance, and how many methods beat chance with p < 0.01
    (met: best >= 15 points, median >= 8, at least 14 of 16);
  4 motion: the static-clip control's drop of test mAP on the motion classes (static_drop_mAP_act_motion);
    met when at least half of the methods that read a clip lose at least 3 points;
  5 stability: Spearman's rho of the test rankings by mAP and by mIoU between the two data seeds (met: >= 0.7);
  6 cost: wall < 15 min and peak < 4 GB per run.

    python benchmarks/default_budget.py                                # the default: data seeds 0 and 1
    python benchmarks/default_budget.py --cfg-options init.weights=scratch --out work_dirs/budget_scratch
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
            dry: bool = False, cfg_options: list[str] | None = None) -> dict:
    """One main job in a fresh output and cache folder; wall seconds and peak resident memory (GiB)."""
    run_dir, cache = out / f"synth{synth_seed}", out / f"cache_synth{synth_seed}"
    cmd = [sys.executable, str(ROOT / "tools" / "run_bench.py"), "--methods", methods, "--synth-seed", str(synth_seed),
           "--out", str(run_dir), "--no-progress"]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    if synth_movies:
        cmd += ["--synth-movies", synth_movies]
    if cfg_options:
        cmd += ["--cfg-options", *cfg_options]
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


def ref_types(run_dir: Path) -> dict:
    """Instance key -> reference type ("appearance" | "position" | "both") of the run's data, from the generator's
    factors.json: the data set is found (or regenerated, deterministically) from the rows' ``data_generator``."""
    import re

    from ravar_bench.data.synthetic import FACTORS_FILE, SynthConfig, ensure_synthetic

    row = json.loads(next((run_dir / "results").glob("*__test__seed0.json")).read_text())
    m = re.search(r"seed=(\d+) movies=(\d+)/(\d+)/(\d+) clips=(\d+) q=(\d+)", row.get("data_generator", ""))
    if m is None:
        raise UsageError(f"{run_dir}: the rows name no RefAVA-Synth data ({row.get('data_generator')!r})")
    seed, tr, va, te, clips, q = map(int, m.groups())
    cfg = SynthConfig(seed=seed, train_movies=tr, val_movies=va, test_movies=te, clips_per_movie=clips, quality=q)
    cache = run_dir.parent / f"cache_{run_dir.name}"
    root = ensure_synthetic(cfg, cache_dir=cache if cache.is_dir() else None, progress=False)
    return {k: v["ref_type"] for k, v in json.loads((root / FACTORS_FILE).read_text())["instances"].items()}


def _subset(pred: dict, keys: set) -> dict:
    idx = [i for i, k in enumerate(pred["keys"]) if k in keys]
    return {k: ([v[i] for i in idx] if k == "keys" else v[idx]) for k, v in pred.items()}


def criteria_12(run_dir: Path, n_boot: int, types: dict | None = None) -> dict:
    """Criteria 1-4 of one run folder, from its test prediction files and result rows (``types``: instance key ->
    reference type; default: the run's data set's factors.json)."""
    chance = _pred(run_dir, CHANCE)
    if chance is None:
        raise UsageError(f"{run_dir}: no predictions/{CHANCE}__test__seed0.npz; the chance control must be run")
    base = {m: _metric(chance, m) for m in ("mIoU", "mAP")}
    types = ref_types(run_dir) if types is None else types
    appearance = {k for k in chance["keys"] if types.get(k) == "appearance"}
    base["mIoU_appearance"] = _metric(_subset(chance, appearance), "mIoU") if appearance else float("nan")
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
        if appearance:
            sub, sub_ch = _subset(pred, appearance), _subset(chance, appearance)
            row["app_mIoU_vs_chance"] = _metric(sub, "mIoU") - _metric(sub_ch, "mIoU")
            row["p_app_mIoU"] = paired_bootstrap_p(sub, sub_ch, n_boot=n_boot)["mIoU"]
        res = run_dir / "results" / f"{m}__test__seed0.json"
        drop = json.loads(res.read_text()).get("static_drop_mAP_act_motion") if res.is_file() else None
        row["static_drop_motion"] = float("nan") if drop is None else float(drop)
        rows.append(row)
    text_rows = [r for r in rows if r["reads_text"]]
    c1_pass = [r["method"] for r in text_rows
               if r["mIoU_vs_chance"] > 0 and r["p_chance_mIoU"] < P_LEVEL
               and r.get("swap_drop_mIoU", 0) > 0 and r.get("p_swap_mIoU", 1) < P_LEVEL]
    gains = np.array([r["mAP_vs_chance"] for r in rows])
    beat = [r["method"] for r in rows if r["mAP_vs_chance"] > 0 and r["p_chance_mAP"] < P_LEVEL]
    app = [r["method"] for r in text_rows if r.get("app_mIoU_vs_chance", 0) > 0 and r.get("p_app_mIoU", 1) < P_LEVEL]
    clip_rows = [r for r in rows if np.isfinite(r["static_drop_motion"])]
    motion = [r["method"] for r in clip_rows if r["static_drop_motion"] >= 3]
    return {
        "chance": base, "rows": rows,
        "c2_appearance": {"instances": len(appearance), "passing": len(app), "methods_reading_text": len(text_rows),
                          "met": len(app) >= min(12, len(text_rows))},
        "c4_motion": {"methods_reading_a_clip": len(clip_rows), "losing_3": len(motion),
                      "met": bool(clip_rows) and 2 * len(motion) >= len(clip_rows)},
        "c1": {"methods_reading_text": len(text_rows), "passing": len(c1_pass),
               "met": len(text_rows) > 0 and len(c1_pass) == len(text_rows)},
        "c3": {"best": float(gains.max()) if len(gains) else float("nan"),
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
                  f"peak memory {r['peak_rss_gib']:.2f} GiB   criterion 6 (< 15 min, < 4 GB): "
                  f"{'met' if ok else 'NOT met'}")
    for d in dirs:
        c = criteria_12(d, n_boot)
        summary["criteria"][d.name] = c
        print(f"\n[{d.name}] chance control: test mIoU {c['chance']['mIoU']:.2f}, test mAP {c['chance']['mAP']:.2f}")
        print(f"{'method':22s} {'mIoU-ch':>8s} {'p':>7s} {'swapdrop':>9s} {'p':>7s} {'app-ch':>7s} {'p':>7s} "
              f"{'mAP-ch':>8s} {'p':>7s} {'static':>7s}")
        nan = float("nan")
        for r in c["rows"]:
            print(f"{r['method']:22s} {r['mIoU_vs_chance']:8.2f} {r['p_chance_mIoU']:7.3f} "
                  f"{r.get('swap_drop_mIoU', nan):9.2f} {r.get('p_swap_mIoU', nan):7.3f} "
                  f"{r.get('app_mIoU_vs_chance', nan):7.2f} {r.get('p_app_mIoU', nan):7.3f} "
                  f"{r['mAP_vs_chance']:8.2f} {r['p_chance_mAP']:7.3f} {r['static_drop_motion']:7.2f}"
                  + ("" if r["reads_text"] else "  (no text)"))
        c1, c2, c3, c4 = c["c1"], c["c2_appearance"], c["c3"], c["c4_motion"]
        print(f"criterion 1 (referring): {c1['passing']}/{c1['methods_reading_text']} methods that read the sentence "
              f"beat chance on test mIoU and drop under the swap, both p < {P_LEVEL}: {'met' if c1['met'] else 'NOT met'}")
        print(f"criterion 2 (appearance): {c2['passing']}/{c2['methods_reading_text']} beat chance's test mIoU "
              f"({c['chance']['mIoU_appearance']:.2f}) on the {c2['instances']} appearance-only references with "
              f"p < {P_LEVEL} (>= 12): {'met' if c2['met'] else 'NOT met'}")
        print(f"criterion 3 (actions): test mAP - chance: best {c3['best']:.2f} (>= 15), median {c3['median']:.2f} "
              f"(>= 8); {c3['beat_chance_p01']}/{c3['methods']} beat chance with p < {P_LEVEL} (>= 14): "
              f"{'met' if c3['met'] else 'NOT met'}")
        print(f"criterion 4 (motion): {c4['losing_3']}/{c4['methods_reading_a_clip']} methods that read a clip lose "
              f">= 3 points of motion-class mAP in the static-clip control (>= half): "
              f"{'met' if c4['met'] else 'NOT met'}")
    if len(dirs) >= 2:
        comp = compare_runs(dirs[0], dirs[1])
        summary["criteria"]["stability"] = comp
        met = all(c["rho"] >= 0.7 for c in comp.values())
        print(f"\ncriterion 5 (stability, {dirs[0].name} vs {dirs[1].name}): Spearman rho test mAP "
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
    ap.add_argument("--cfg-options", nargs="+", default=None, metavar="KEY=VALUE",
                    help="passed to every job (e.g. init.weights=scratch for the scratch side of the README's table)")
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
    runs = [run_job(out, s, methods, args.epochs, args.synth_movies, args.dry, args.cfg_options) for s in seeds]
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
