"""``ravar-bench``: one command with a subcommand per job; ``tools/*.py`` are thin equivalents of the same code.

    ravar-bench run --methods all                     # = python tools/run_bench.py --methods all
    ravar-bench list ['refatomnet*'] [--plugins my_pkg.methods]
    ravar-bench leaderboard DIR                       # = python tools/make_leaderboard.py DIR
    ravar-bench prepare | convert | detect | demo     # = tools/prepare_refava.py, convert_refava.py,
                                                      #   precompute_detections.py, demo.py
    ravar-bench check-weights --methods all --config-set full --cfg-options ...   # every weights file, loaded

Bad usage (an unknown method or option, a missing config, a data root without annotations, any
:class:`ravar_bench.errors.RavarError`) ends with one line on stderr and exit code 2, never a traceback.
Flags are defined once here (``add_<command>_args``); add new ones here, not in tools/.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from mmengine.config import DictAction

from .errors import RavarError, UsageError
from .suites import SUITES


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the full usage stays under --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _formatter():
    return argparse.RawDescriptionHelpFormatter


def _add_plugins(ap):
    ap.add_argument("--plugins", default=None,
                    help="comma-separated modules to import before looking methods up (their @register_method "
                         "classes become runnable); also read from $RAVAR_BENCH_PLUGINS")


# ------------------------------------------------------------------------------------------------ flag types
# Checked when parsed (argparse ``type=``): a mistaken flag is one line and exit code 2 before any config is read,
# any data opened or any result rewritten, not work done on it (an untrained model scored, 17 methods trained
# for an empty --methods, leaderboard.md rewritten for nothing).


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {n}")
    return n


def seed_list(text: str) -> list[int]:
    """Comma-separated non-negative, distinct integers (numpy refuses negative seeds; a repeat would run once)."""
    parts = [x.strip() for x in text.split(",")]
    try:
        seeds = [int(x) for x in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative integers, got {text!r}") from None
    bad = [s for s in seeds if s < 0]
    if bad:
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {bad[0]}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"seed {repeated[0]} is given more than once in {text!r}")
    return seeds


def sizes_text(text: str) -> list[int]:
    """Comma-separated input sizes in pixels (``32,64``), each an integer >= 1."""
    out = []
    for part in text.split(","):
        if part.strip():
            out.append(positive_int(part.strip()))
    if not out:
        raise argparse.ArgumentTypeError(f"names no size ({text!r}); give e.g. 32 or 32,64")
    return out


def methods_text(text: str) -> str:
    """Non-empty after splitting at commas: '' or ',' name no method (and must not mean 'all')."""
    if not [x for x in text.split(",") if x.strip()]:
        raise argparse.ArgumentTypeError(f"names no method ({text!r}); give 'all', a family or comma-separated names")
    return text


def writable_folder(text: str) -> str:
    """A folder that exists and can be written, or can be created: the nearest existing folder on its path
    is probed with a real temporary file (os.access says yes to root on a read-only mount)."""
    import tempfile

    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise argparse.ArgumentTypeError(f"{text} cannot be created: {probe} is a file")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"{text} cannot be {'written' if probe == p else 'created'}: "
                                         f"{probe} is not writable ({e.strerror})") from None
    return text


# ------------------------------------------------------------------------------------------------------ run
RUN_HELP = """Train and score methods, write results.csv and a Table-2-style leaderboard.md.

    ravar-bench run --methods all                       # every Table-2 method, tiny configs, embedded data
    ravar-bench run --methods x3d,clip4clip --seeds 0,1,2 --epochs 2 --out work_dirs/quick
    ravar-bench run --methods all --data refava --data-root /data/refava --config-set full \\
        --cfg-options text_encoder.path=/models/bert-base-uncased
    ravar-bench run --plugins my_pkg.methods --methods my_method,chance   # a plug-in beside the control
    ravar-bench run --methods path/to/my_method_tiny.py                    # a config whose custom_imports registers it

Finished (method, split, seed) results are kept and not re-run unless --force; an interrupted run
resumes from the last finished epoch. (tools/run_bench.py takes the same flags.)
"""


def add_run_args(ap):
    ap.add_argument("--methods", default=None, type=methods_text,
                    help="'all' (Table 2, the default), a family name, comma-separated names, wildcards "
                         "('refatomnet_*'), or a config file path whose custom_imports registers the method")
    ap.add_argument("--suite", default="table2", choices=list(SUITES),
                    help="one of the paper's tables: its methods (unless --methods), settings and table shape")
    ap.add_argument("--data", default="synthetic", choices=["synthetic", "refava"])
    ap.add_argument("--data-root", default=None, help="real RefAVA root: annotations/ and frames/ (with --data refava)")
    ap.add_argument("--config-set", default="tiny",
                    help="tiny | full, optionally +overlay from the method's config folder (e.g. full+released)")
    ap.add_argument("--seeds", default="0", type=seed_list, help="comma-separated distinct seeds >= 0, e.g. 0,1,2")
    ap.add_argument("--epochs", type=positive_int, default=None, help="override train.epochs of every config (>= 1)")
    ap.add_argument("--out", default=None, type=writable_folder, help="output folder (default work_dirs/bench, or work_dirs/<suite>)")
    ap.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                    help="config overrides key=value, e.g. train.batch_size=8 data.img_size=96")
    ap.add_argument("--force", action="store_true", help="re-run methods whose results exist")
    ap.add_argument("--wait", action="store_true",
                    help="if another run holds --out, wait for it to finish instead of refusing")
    ap.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    ap.add_argument("--synth-seed", type=int, default=0, help="seed of the embedded RefAVA-Synth data")
    ap.add_argument("--synth-movies", default=None,
                    help="train,val,test movies of RefAVA-Synth (default: the sizes of the generator's SynthConfig)")
    ap.add_argument("--synth-clips", type=int, default=6, help="annotated key seconds per RefAVA-Synth movie")
    ap.add_argument("--skip-invalid", action="store_true", help="count and skip invalid annotation rows")
    ap.add_argument("--skip-missing-frames", action="store_true", help="count and skip instances with missing frames")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--launcher", default="none", choices=["none", "submitit", "submitit-local"],
                    help="fan methods x seeds out as independent jobs (Slurm through submitit, or local processes)")
    ap.add_argument("--slurm", nargs="+", action=DictAction, default={},
                    help="submitit Slurm parameters, e.g. slurm_partition=gpu gpus_per_node=1 timeout_min=600")
    ap.add_argument("--list", action="store_true", help="list the registered methods and exit (= ravar-bench list)")
    _add_plugins(ap)


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{flag}: expected comma-separated integers, got {text!r}") from None


def _check_data_root(args) -> None:
    if args.data == "refava":
        if not args.data_root:
            raise UsageError("--data refava needs --data-root DIR (holding annotations/ and frames/)")
        root = Path(args.data_root)
        if not root.is_dir():
            raise UsageError(f"--data-root {args.data_root}: no such folder")
        if not (root / "annotations").is_dir():
            own = any(root.glob("*_crr_final.pkl")) or any(root.glob("*.jsonl"))  # the annotations folder itself
            raise UsageError(f"--data-root {args.data_root}: no annotations/ folder in it (expected "
                             f"annotations/{{split}}_set_*_crr_final.pkl or {{split}}.jsonl; "
                             f"see tools/convert_refava.py)"
                             + (f"; it holds the annotation files itself: pass its parent, --data-root {root.parent}"
                                if own else ""))
    elif args.data_root:
        raise UsageError("--data-root is only read with --data refava")


def cmd_run(args, command: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .registry import load_plugins

    load_plugins(args.plugins)
    if args.plugins:  # child processes (launchers, torchrun ranks started by us) import them too
        os.environ["RAVAR_BENCH_PLUGINS"] = ",".join(filter(None, [os.environ.get("RAVAR_BENCH_PLUGINS"), args.plugins]))
    if args.list:
        return _print_list(None)
    from .data.synthetic import SynthConfig
    from .suites import run_options, suite_methods

    methods = suite_methods(args.suite, args.methods)
    _check_data_root(args)
    seeds = args.seeds
    sizes = SynthConfig()
    movies = (_int_list(args.synth_movies, "--synth-movies") if args.synth_movies is not None
              else [sizes.train_movies, sizes.val_movies, sizes.test_movies])
    if len(movies) != 3:
        raise UsageError(f"--synth-movies: expected train,val,test counts, got {args.synth_movies!r}")
    from .runner.bench import run_benchmark
    from .runner.preflight import preflight

    preflight(methods, args.config_set, run_options(args.suite, args.cfg_options, args.epochs))

    out = args.out or ("work_dirs/bench" if args.suite == "table2" else f"work_dirs/{args.suite}")
    if args.out is None:  # the default folder, checked as a given --out is at parse time
        try:
            writable_folder(out)
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"--out (default): {e}") from None
    synth = SynthConfig(seed=args.synth_seed, train_movies=movies[0], val_movies=movies[1], test_movies=movies[2],
                        clips_per_movie=args.synth_clips)
    kw = dict(data=args.data, data_root=args.data_root, config_set=args.config_set, epochs=args.epochs,
              cfg_options=args.cfg_options, force=args.force, synth=synth, skip_invalid=args.skip_invalid,
              skip_missing_frames=args.skip_missing_frames, device=args.device, command=command, suite=args.suite,
              wait=args.wait)
    if args.launcher == "none":
        res = run_benchmark(methods, out, seeds=seeds, progress=not args.no_progress, **kw)
    else:
        from .runner.launch import fan_out

        res = fan_out(methods, seeds, out, cluster="local" if args.launcher == "submitit-local" else None,
                      slurm=args.slurm, **kw)
    if res["results_csv"] is None:  # a non-zero rank of a torchrun job
        return 1 if res["failures"] else 0
    print(f"\nresults:     {res['results_csv']}\nleaderboard: {res['leaderboard']}\nwall time:   {res['wall_s']:.0f} s")
    for name, t in res["timings"].items():
        print(f"  {name:28s} {t:6.1f} s")
    from .registry import broken

    # a suite baseline that did not import is missing from "all" / its family: a failure; a broken plug-in a note
    for k, v in broken().items():
        if not k.startswith("baseline "):
            print(f"note: {k} could not be imported and was skipped: {v}", file=sys.stderr)
    failures = {**{f"{k} (not imported)": v for k, v in broken().items() if k.startswith("baseline ")},
                **res["failures"]}
    if failures:
        print("\nFAILED:", file=sys.stderr)
        for k, v in failures.items():
            print(f"  {k}: {v}", file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------------------------------- list
LIST_HELP = """List the registered methods: name, family, paper row, origin, source file, config sets and overlays.

    ravar-bench list                     # the suite's methods and every installed plug-in
    ravar-bench list 'refatomnet*'       # shell wildcards
    ravar-bench list --plugins my_pkg.methods

"tiny: base" means the method ships no tiny config and runs on configs/_base_/tiny.py with its constructor's defaults.
"""


def add_list_args(ap):
    ap.add_argument("pattern", nargs="?", default=None, help="shell wildcard on the method names")
    ap.add_argument("--family", default=None)
    _add_plugins(ap)


def _print_list(pattern: str | None, family: str | None = None) -> int:
    from tabulate import tabulate

    from .registry import broken, list_methods, method_info

    rows = []
    for n in list_methods(pattern, family=family):
        info = method_info(n)
        sets = info.config_sets()
        own = [s for s in ("tiny", "full") if s in sets]
        cfgs = ", ".join([f"{s}" for s in own] + [f"{s}: base" for s in ("tiny", "full") if s not in own])
        overlays = ", ".join(s for s in sets if s not in ("tiny", "full"))
        src = info.source_file
        try:
            src = str(Path(src).resolve().relative_to(Path.cwd()))
        except ValueError:
            pass
        rows.append([n, info.family, info.paper_name or "–", "suite" if not info.external else info.origin, src,
                     cfgs, overlays or "–"])
    print(tabulate(rows, headers=["method", "family", "paper row", "origin", "source", "configs", "overlays"],
                   tablefmt="simple", disable_numparse=True))
    for what, why in broken().items():
        print(f"not available: {what}: {why}")
    return 0


def cmd_list(args, command: str) -> int:
    from .registry import load_plugins

    load_plugins(args.plugins)
    return _print_list(args.pattern, args.family)


# ----------------------------------------------------------------------------------------------- leaderboard
LEADERBOARD_HELP = """Regenerate a table (Markdown, LaTeX, CSV, bar chart) from DIR/results.csv alone
(or first rebuild results.csv from DIR/results/*.json with --collect).

    ravar-bench leaderboard work_dirs/bench              # = python tools/make_leaderboard.py work_dirs/bench
    ravar-bench leaderboard work_dirs/table3a --suite table3a
    ravar-bench leaderboard work_dirs/bench --protocol macro
    ravar-bench leaderboard work_dirs/bench --html       # + index.html, one self-contained explorable page
"""


def add_leaderboard_args(ap):
    ap.add_argument("dir", help="a run folder holding results.csv")
    ap.add_argument("--protocol", default=None, choices=["weighted", "macro", "gated"],
                    help="the table's protocol (default: the one the runs' eval.average named)")
    ap.add_argument("--config-set", default=None, help="the config set to tabulate when results.csv holds several")
    ap.add_argument("--data", default=None,
                    help="the data to tabulate when results.csv holds several (its identity or digest prefix)")
    ap.add_argument("--suite", default="table2", choices=list(SUITES))
    ap.add_argument("--collect", action="store_true", help="first rebuild results.csv from results/*.json")
    ap.add_argument("--command", default="", help="the command that made the results, shown under the title")
    ap.add_argument("--stability-with", default=None, metavar="DIR2",
                    help="another run folder (e.g. --synth-seed 1): Spearman's rho of the two test rankings "
                         "in the stability section")
    ap.add_argument("--html", action="store_true",
                    help="also write DIR/index.html: one self-contained, explorable page (ravar_bench.report.webpage)")
    ap.add_argument("--data-root", default=None,
                    help="with --html: the data root whose key frames the page's examples show (default: the "
                         "run's RefAVA-Synth folder when it exists; without frames the section says so)")


def cmd_leaderboard(args, command: str) -> int:
    from .report.leaderboard import write_leaderboard

    d = Path(args.dir)
    if not d.is_dir():
        raise UsageError(f"{args.dir}: no such folder")
    if args.collect:
        from .engine.results import write_results_csv

        write_results_csv(args.dir)
    elif not (d / "results.csv").is_file():
        raise UsageError(f"{args.dir}: no results.csv (run it with --collect to rebuild it from results/*.json)")
    if args.stability_with and not (Path(args.stability_with) / "results.csv").is_file():
        raise UsageError(f"--stability-with {args.stability_with}: no results.csv there")
    from .engine.results import read_results_table

    # results.csv is a cache of results/*.json: a damaged or disagreeing one is rebuilt (one line says so)
    # before any table is drawn, or, with nothing to rebuild it from, one line naming the file and line
    for folder in filter(None, (d, args.stability_with)):
        note = read_results_table(folder)[1]
        if note:
            print(f"note: {note}", file=sys.stderr)
    if args.html:  # the command that made the results, read before leaderboard.md is rewritten
        from .report.webpage import recorded_command

        made_by = args.command or recorded_command(d, args.suite)
    print(write_leaderboard(args.dir, command=args.command, protocol=args.protocol, suite=args.suite,
                            stability_with=args.stability_with, config_set=args.config_set, data=args.data))
    if args.html:
        from .report.webpage import write_html

        print(write_html(d, args.suite, source_root=args.data_root, command=made_by, config_set=args.config_set,
                         data=args.data, protocol=args.protocol))
    return 0


# --------------------------------------------------------------------------------------------------- prepare
PREPARE_HELP = """Decode AVA movies into OUT/frames/<video_id>/image_%06d.jpg, only the frames the annotations need.

    ravar-bench prepare --videos /data/ava/videos --annotations /data/refava --out /data/refava --workers 4

Frame index i of the 30 fps timeline is movie second 900 + (i - 1) / 30; the decoded frame with the
nearest timestamp is written. --time-offset S: the file's own time 0 is movie second S (0 for AVA
movies; 900 for a piece that starts at second 900, as in tests/test_real_path.py). --frame-stride takes
a comma list (e.g. 4,8 covers tiny and full configs) or use --full-window for every frame of the window.
Resumable (per-video .done.json written last); exits non-zero if any movie is missing or unreadable.
(tools/prepare_refava.py takes the same flags.)
"""


def add_prepare_args(ap):
    ap.add_argument("--videos", required=True, help="folder of movies named <video_id>.{mp4,mkv,webm,avi}")
    ap.add_argument("--annotations", required=True, help="RefAVA root holding annotations/ (pickles or JSONL)")
    ap.add_argument("--out", required=True, type=writable_folder, help="output root (frames/ goes here)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--frame-stride", default="8", help="stride(s), comma-separated, e.g. 4,8")
    ap.add_argument("--window", type=int, default=90, help="frames around the key frame a clip may use")
    ap.add_argument("--full-window", action="store_true", help="write every frame of the window, not only the sampled ones")
    ap.add_argument("--time-offset", type=float, default=0.0, help="movie second at which the file's own timeline starts")
    ap.add_argument("--short-side", type=int, default=0, help="resize so the short side is N px (0: keep)")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality")
    ap.add_argument("--splits", default=None, help="comma-separated splits (default: all present)")
    ap.add_argument("--no-progress", action="store_true")


def cmd_prepare(args, command: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not (Path(args.annotations) / "annotations").is_dir():
        raise UsageError(f"--annotations {args.annotations}: no annotations/ folder in it")
    from .realdata.prepare import prepare_refava

    s = prepare_refava(args.videos, args.annotations, args.out, workers=args.workers, num_frames=args.num_frames,
                       strides=_int_list(args.frame_stride, "--frame-stride"), window=args.window,
                       time_offset=args.time_offset, full_window=args.full_window, quality=args.quality,
                       short_side=args.short_side, progress=not args.no_progress,
                       splits=args.splits.split(",") if args.splits else None)
    print(s.text())
    return 0 if s.ok else 1


# --------------------------------------------------------------------------------------------------- convert
CONVERT_HELP = """Validate the released RefAVA pickles and write OUT/annotations/{split}.jsonl plus OUT/report.{json,md}.

    ravar-bench convert --data-root /data/refava_release --out /data/refava

JSONL fields: key, video_id, timestamp, person_id, box [x1,y1,x2,y2] in [0,1], actions [AVA ids], text.
Invalid rows are rejected (listed with reasons in the report); the loader reads the JSONL when no pickles exist.
(tools/convert_refava.py takes the same flags.)
"""


def add_convert_args(ap):
    ap.add_argument("--data-root", required=True, help="folder holding annotations/{split}_set_*_crr_final.pkl")
    ap.add_argument("--out", required=True, type=writable_folder)


def cmd_convert(args, command: str) -> int:
    if not (Path(args.data_root) / "annotations").is_dir():
        raise UsageError(f"--data-root {args.data_root}: no annotations/ folder in it")
    from .realdata.convert import convert_refava

    rep = convert_refava(args.data_root, args.out)
    for s, r in rep["splits"].items():
        print(f"{s}: {r['instances']} instances, {r['clips']} clips, {len(r['rejected'])} rejected")
    print(f"report: {args.out}/report.md")
    return 0


# ---------------------------------------------------------------------------------------------------- detect
DETECT_HELP = """Run a frozen detector on every key frame of a split and write DIR/detections/{split}_detections.json.

    ravar-bench detect --data-root /data/refava --split train --detector detr --checkpoint /models/detr-resnet-50
    ravar-bench detect --data-root /data/refava --split train --detector hog   # persons only, no weights needed

DETR-R50 loads a LOCAL transformers folder (no download). HOG is OpenCV's built-in people detector, the
documented fallback when no checkpoint is available. (tools/precompute_detections.py takes the same flags.)
"""


def add_detect_args(ap):
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--split", required=True, help="train | val | test | all")
    ap.add_argument("--detector", default=None, choices=["detr", "hog"], help="default: detr with --checkpoint, else hog")
    ap.add_argument("--checkpoint", default=None, help="local DETR folder (config.json + weights)")
    ap.add_argument("--window", type=int, default=90)
    ap.add_argument("--per-query", action="store_true",
                    help="DETR only: keep every query in query order (the released RefAtomNet code's layout; "
                         "read it with --config-set full+released)")
    ap.add_argument("--no-progress", action="store_true")


def cmd_detect(args, command: str) -> int:
    if not (Path(args.data_root) / "annotations").is_dir():
        raise UsageError(f"--data-root {args.data_root}: no annotations/ folder in it")
    if args.split not in ("train", "val", "test", "all"):
        raise UsageError(f"--split must be train, val, test or all, got {args.split!r}")
    from .realdata.detect import precompute_detections

    det = args.detector or ("detr" if args.checkpoint else "hog")
    if args.per_query and det != "detr":
        raise UsageError("--per-query is DETR's query layout: it needs --detector detr --checkpoint DIR")
    extra = {"per_query": True} if args.per_query else {}
    splits = ["train", "val", "test"] if args.split == "all" else [args.split]
    for s in splits:
        p = precompute_detections(args.data_root, s, det, args.checkpoint, window=args.window, progress=not args.no_progress,
                                  **extra)
        print(f"{s}: wrote {p}")
    return 0


# ------------------------------------------------------------------------------------------------------ demo
DEMO_HELP = """Run a trained method on your own video and sentence: top AVA actions and a PNG with the predicted box.

    ravar-bench demo --video street.mp4 --text "the man in the red jacket" --run-dir work_dirs/bench --method x3d
    ravar-bench demo --video clip.avi --text "..." --checkpoint runs/x3d/seed0/model.pt --config runs/x3d/seed0/config.py

The clip is 8 (data.num_frames) distinct frames at data.frame_stride on a 30 fps timeline centred on
--time (default: the middle of the video). Methods that read detections get OpenCV HOG person boxes.
(tools/demo.py takes the same flags.)
"""


def add_demo_args(ap):
    ap.add_argument("--video", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--run-dir", default=None, help="the --out of ravar-bench run")
    ap.add_argument("--method", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", default=None, help="model.pt (with --config instead of --run-dir/--method)")
    ap.add_argument("--config", default=None, help="the run's config.py")
    ap.add_argument("--time", type=float, default=None, help="key-frame time in seconds on the video's timeline")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--out", default="demo.png")
    _add_plugins(ap)


def cmd_demo(args, command: str) -> int:
    from .registry import load_plugins

    load_plugins(args.plugins)
    if not Path(args.video).is_file():
        raise UsageError(f"--video {args.video}: no such file")
    if not ((args.run_dir and args.method) or (args.checkpoint and args.config)):
        raise UsageError("give --run-dir and --method, or --checkpoint and --config")
    from .realdata.demo import load_trained, run_demo

    model, cfg = load_trained(args.run_dir, args.method, args.seed, args.checkpoint, args.config)
    res = run_demo(args.video, args.text, model, cfg, time=args.time, top_k=args.top_k, out_png=args.out)
    print(f'"{args.text}" at {res["time"]:.2f} s')
    for name, s in res["actions"]:
        print(f"  {name:40s} {s:.3f}")
    print("box (x1, y1, x2, y2, normalised): " + ", ".join(f"{v:.3f}" for v in res["box"]))
    print(f"figure: {res['png']}")
    return 0


# -------------------------------------------------------------------------------------------------- pretrain
PRETRAIN_HELP = """Make the pretrained starting points of the tiny configs (the weights the package ships).

    ravar-bench pretrain --methods all                  # every method: kept where up to date, else made
    ravar-bench pretrain --methods x3d --force --out /tmp/w   # remake one into another folder
    ravar-bench pretrain --methods all --sizes 32       # only the actor pass's files (what the default loads)

Per method and input size it builds the tiny instance, trains it on person-centred clips of a RefAVA-Synth corpus
with seeds of its own (actions + appearance; ravar_bench/pretraining/), and writes <method>@<size>.safetensors and
its manifest entry (sha256, command, commit, corpus, steps, held-out pretext score). One line per file. Resumable:
an interrupted method continues after its last finished epoch. Deterministic on a given machine and thread count.
"""


def add_pretrain_args(ap):
    ap.add_argument("--methods", default="all", type=methods_text, help="'all', a family or comma-separated names")
    ap.add_argument("--out", default=None, type=writable_folder,
                    help="folder for the files and manifest.json (default: the package's ravar_bench/weights/tiny)")
    ap.add_argument("--epochs", type=positive_int, default=None,
                    help="passes over the corpus (default: the recipe's); a file made so is not the recipe's")
    ap.add_argument("--force", action="store_true", help="remake files that are up to date")
    ap.add_argument("--sizes", type=sizes_text, default=None,
                    help="only the files of these input sizes (comma-separated pixels, e.g. 32: the actor pass's); "
                         "default: every size each method is built for")
    ap.add_argument("--no-progress", action="store_true")
    _add_plugins(ap)


def cmd_pretrain(args, command: str) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .registry import load_plugins, resolve_methods

    load_plugins(args.plugins)
    methods = [m for m in resolve_methods(args.methods)]
    from .pretraining.run import pretrain

    pretrain(methods, out=args.out, progress=not args.no_progress, force=args.force, epochs=args.epochs,
             sizes=args.sizes)
    return 0
# ------------------------------------------------------------------------------------------- check-weights
CHECK_WEIGHTS_HELP = """Load every weights file the configs name, as a run would, on the meta device (no memory).

Per method: the file, the layout it was read as, how many of the module's tensors it set, and OK or the error.

    ravar-bench check-weights --methods x3d --cfg-options model.pretrained=/models/x3d_m_16x5x1.pth
    ravar-bench check-weights --methods clip4clip,mevtr,xclip --config-set full \\
        --cfg-options text_encoder.path=/models/bert-base-uncased model.clip.pretrained=/models/ViT-B-32.pt

A --cfg-options key is given to the methods whose config reads it (model.clip.pretrained: the CLIP methods) and
left out of the others; a key no selected method reads is an error. Exit code 0 when every configured file loads,
2 when one is missing or refused. The files to download: docs/model_zoo.md.
"""


def add_check_weights_args(ap):
    ap.add_argument("--methods", default="all", type=methods_text,
                    help="'all' (Table 2, the default), a family name, comma-separated names or wildcards")
    ap.add_argument("--config-set", default="full", help="full (the default) | tiny, optionally +overlay")
    ap.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                    help="the weights paths (and any other config key), e.g. model.pretrained=/models/x3d.pth")
    ap.add_argument("--device", default="meta", choices=["meta", "cpu"],
                    help="meta: no memory (the default; a method that cannot load there is loaded on the CPU)")
    _add_plugins(ap)


def cmd_check_weights(args, command: str) -> int:
    from .registry import load_plugins

    load_plugins(args.plugins)
    from .runner.check_weights import all_ok, check_weights, format_report
    from .suites import suite_methods

    results = check_weights(suite_methods("table2", args.methods), args.config_set, args.cfg_options, args.device)
    print(format_report(results))
    return 0 if all_ok(results) else 2


# ---------------------------------------------------------------------------------------------------- driver
COMMANDS = {
    # name: (add_args, run, description, the tools/ script that is the same command)
    "run": (add_run_args, cmd_run, RUN_HELP, "run_bench.py"),
    "list": (add_list_args, cmd_list, LIST_HELP, None),
    "leaderboard": (add_leaderboard_args, cmd_leaderboard, LEADERBOARD_HELP, "make_leaderboard.py"),
    "prepare": (add_prepare_args, cmd_prepare, PREPARE_HELP, "prepare_refava.py"),
    "convert": (add_convert_args, cmd_convert, CONVERT_HELP, "convert_refava.py"),
    "detect": (add_detect_args, cmd_detect, DETECT_HELP, "precompute_detections.py"),
    "demo": (add_demo_args, cmd_demo, DEMO_HELP, "demo.py"),
    "pretrain": (add_pretrain_args, cmd_pretrain, PRETRAIN_HELP, None),
    "check-weights": (add_check_weights_args, cmd_check_weights, CHECK_WEIGHTS_HELP, None),
}


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _dispatch(fn, args, command: str, prog: str) -> int:
    try:
        return fn(args, command)
    except RavarError as e:
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return 2


def build_parser(prog: str = "ravar-bench") -> argparse.ArgumentParser:
    ap = _Parser(prog=prog, description=__doc__, formatter_class=_formatter())
    from . import __version__

    ap.add_argument("--version", action="version", version=f"ravar-bench {__version__}")
    sub = ap.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (add, _, text, _tool) in COMMANDS.items():
        sp = sub.add_parser(name, help=text.splitlines()[0].replace("%", "%%"), description=text, formatter_class=_formatter())
        add(sp)
    return ap


def main(argv: list[str] | None = None) -> int:
    """The ``ravar-bench`` console command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    command = "ravar-bench " + " ".join(shlex.quote(a) for a in argv)
    return _dispatch(COMMANDS[args.subcommand][1], args, command, f"ravar-bench {args.subcommand}")


def tool_main(name: str, argv: list[str] | None = None, script: str | None = None) -> int:
    """``tools/<script>.py``: the subcommand ``name`` as a stand-alone script (same flags, same errors)."""
    add, fn, text, tool = COMMANDS[name]
    script = script or f"tools/{tool}"
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = _Parser(prog=Path(script).name, description=text, formatter_class=_formatter())
    add(ap)
    args = ap.parse_args(argv)
    command = f"python {script} " + " ".join(shlex.quote(a) for a in argv)
    return _dispatch(fn, args, command, Path(script).name)


if __name__ == "__main__":
    sys.exit(main())
