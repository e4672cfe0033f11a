#!/usr/bin/env python
"""Train and score methods, write results.csv and a Table-2-style leaderboard.md.

    python tools/run_bench.py --methods all                       # every Table-2 method, tiny configs, embedded data
    python tools/run_bench.py --methods x3d,clip4clip --seeds 0,1,2 --epochs 2 --out work_dirs/quick
    python tools/run_bench.py --methods all --data refava --data-root /data/refava --config-set full \
        --cfg-options text_encoder.path=/models/bert-base-uncased

Finished (method, split, seed) results are kept and not re-run unless --force; an interrupted run
resumes from the last finished epoch.
"""
import argparse
import logging
import shlex
import sys

import _bootstrap  # noqa: F401
from mmengine.config import DictAction

from ravar_bench.data.synthetic import SynthConfig
from ravar_bench.engine.bench import run_benchmark
from ravar_bench.suites import suite_methods


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default=None,
                    help="'all' (Table 2, the default), a family name, or comma-separated names")
    ap.add_argument("--suite", default="table2", choices=["table2", "table3a", "table3b", "table4a", "table4b"],
                    help="one of the paper's tables: its methods (unless --methods), settings and table shape")
    ap.add_argument("--data", default="synthetic", choices=["synthetic", "refava"])
    ap.add_argument("--data-root", default=None, help="real RefAVA root: annotations/ and frames/ (with --data refava)")
    ap.add_argument("--config-set", default="tiny",
                    help="tiny | full, optionally +overlay from the method's config folder (e.g. full+released)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs of every config")
    ap.add_argument("--out", default=None, help="output folder (default work_dirs/bench, or work_dirs/<suite>)")
    ap.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                    help="config overrides key=value, e.g. train.batch_size=8 data.img_size=96")
    ap.add_argument("--force", action="store_true", help="re-run methods whose results exist")
    ap.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    ap.add_argument("--synth-seed", type=int, default=0, help="seed of the embedded RefAVA-Synth data")
    ap.add_argument("--synth-movies", default="48,12,12", help="train,val,test movies of RefAVA-Synth")
    ap.add_argument("--synth-clips", type=int, default=6, help="annotated key seconds per RefAVA-Synth movie")
    ap.add_argument("--skip-invalid", action="store_true", help="count and skip invalid annotation rows")
    ap.add_argument("--skip-missing-frames", action="store_true", help="count and skip instances with missing frames")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--launcher", default="none", choices=["none", "submitit", "submitit-local"],
                    help="fan methods x seeds out as independent jobs (Slurm through submitit, or local processes)")
    ap.add_argument("--slurm", nargs="+", action=DictAction, default={},
                    help="submitit Slurm parameters, e.g. slurm_partition=gpu gpus_per_node=1 timeout_min=600")
    ap.add_argument("--list", action="store_true", help="list the registered methods and exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.list:
        from ravar_bench.registry import list_methods, method_info

        for n in list_methods():
            print(f"{n:32s} {method_info(n).family}")
        return 0
    methods = suite_methods(args.suite, args.methods)
    out = args.out or ("work_dirs/bench" if args.suite == "table2" else f"work_dirs/{args.suite}")
    tr, va, te = (int(x) for x in args.synth_movies.split(","))
    synth = SynthConfig(seed=args.synth_seed, train_movies=tr, val_movies=va, test_movies=te, clips_per_movie=args.synth_clips)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    command = "python tools/run_bench.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    kw = dict(data=args.data, data_root=args.data_root, config_set=args.config_set, epochs=args.epochs,
              cfg_options=args.cfg_options, force=args.force, synth=synth, skip_invalid=args.skip_invalid,
              skip_missing_frames=args.skip_missing_frames, device=args.device, command=command, suite=args.suite)
    if args.launcher == "none":
        res = run_benchmark(methods, out, seeds=seeds, progress=not args.no_progress, **kw)
    else:
        from ravar_bench.engine.launch import fan_out

        res = fan_out(methods, seeds, out, cluster="local" if args.launcher == "submitit-local" else None,
                      slurm=args.slurm, **kw)
    if res["results_csv"] is None:  # a non-zero rank of a torchrun job
        return 1 if res["failures"] else 0
    print(f"\nresults:     {res['results_csv']}\nleaderboard: {res['leaderboard']}\nwall time:   {res['wall_s']:.0f} s")
    for name, t in res["timings"].items():
        print(f"  {name:28s} {t:6.1f} s")
    if res["failures"]:
        print("\nFAILED:", file=sys.stderr)
        for k, v in res["failures"].items():
            print(f"  {k}: {v}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
