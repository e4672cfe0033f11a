"""The main job: methods x seeds on one data source -> results/*.json, results.csv, leaderboards and plots."""
from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import pandas as pd
import torch

from ..config import load_config
from ..engine import distributed as D
from ..engine.data_source import open_source
from ..engine.results import write_results_csv
from ..engine.text_cache import TextFeatureCache
from ..engine.trainer import train_and_evaluate
from ..errors import RavarError
from ..report.leaderboard import write_suite
from ..report.post_run import add_significance, per_class_plot, qualitative_panel
from ..suites import run_options, suite_methods
from .lock import RunLock
from .preflight import check_local_files

log = logging.getLogger(__name__)


def run_benchmark(methods: list[str] | None, out_dir: str | Path, data: str = "synthetic", data_root: str | None = None,
                  config_set: str = "tiny", seeds=(0,), epochs: int | None = None, cfg_options: dict | None = None,
                  force: bool = False, progress: bool = True, synth=None, skip_invalid: bool = False,
                  skip_missing_frames: bool = False, device: str | None = None, command: str = "",
                  suite: str = "table2", pictures: bool = True, wait: bool = False, lock: bool = True) -> dict:
    """Train and score ``methods`` (default: the suite's) for every seed; one failure never loses the others.

    The output folder is locked for the run (:mod:`.lock`): another run into it refuses with a message naming
    this one, or with ``wait`` queues behind it. ``lock=False``: the caller holds it (the launcher's jobs).
    A problem the user must fix (:class:`RavarError`: bad data, an unusable output folder, a bad setting) ends
    the run with that one error, the methods finished before it kept: every later method would meet it too."""
    # under torchrun rank 0 holds the lock for all ranks; lock=False: the caller holds it
    held = (RunLock(out_dir, command=command, wait=wait) if lock and int(os.environ.get("RANK", "0")) == 0
            else contextlib.nullcontext())
    with held:
        methods = suite_methods(suite) if methods is None else methods
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        device = D.init_from_env() or device or ("cuda" if torch.cuda.is_available() else "cpu")
        main = D.is_main()
        progress = progress and main
        t_start = time.time()

        opts = run_options(suite, cfg_options, epochs)
        check_local_files(methods, config_set, lambda _name: opts)  # every method's files, before data or training
        if not main:  # rank 0 generates the embedded data once; the others wait for it
            D.barrier()
        source = open_source(data, data_root, synth, skip_invalid=skip_invalid, progress=progress)
        if main:
            D.barrier()
        caches: dict = {}
        failures, timings = {}, {}
        for name in methods:
            t0 = time.time()
            try:
                cfg = load_config(name, config_set, opts)
                enc_key = repr(sorted(dict(cfg.text_encoder).items()))
                if enc_key not in caches:
                    caches[enc_key] = TextFeatureCache(dict(cfg.text_encoder), cache_dir=out_dir / "cache")
            except RavarError:  # a bad setting or a missing file the user must fix: one line, not a logged traceback
                raise
            except Exception as e:  # a config or encoder problem of one method must not stop the others
                log.exception("%s: could not load its config", name)
                failures[name] = f"{type(e).__name__}: {e}"
                continue
            for seed in seeds:
                try:
                    train_and_evaluate(cfg, source, caches[enc_key], seed, out_dir, force=force, progress=progress,
                                       device=device, skip_missing_frames=skip_missing_frames)
                except RavarError:  # bad data, an unusable --out, a bad setting: every later method would meet it
                    if main:
                        write_results_csv(out_dir)  # what finished before stays listed
                    raise
                except Exception as e:
                    log.exception("%s seed %d failed", name, seed)
                    failures[f"{name}/seed{seed}"] = f"{type(e).__name__}: {e}"
            timings[name] = time.time() - t0
            if main:
                write_results_csv(out_dir)  # after each method, so a kill loses at most the method in flight
        if not main:
            return {"results_csv": None, "leaderboard": None, "failures": failures, "timings": timings,
                    "wall_s": time.time() - t_start}
        done = [m for m in methods if not any(k.split("/")[0] == m for k in failures)]
        extra = []
        if len(done) >= 2:
            add_significance(out_dir, done)
        csv = write_results_csv(out_dir)
        if pictures and done:
            pc = per_class_plot(out_dir, done, seed=seeds[0])
            val = pd.read_csv(csv)
            val = val[(val["split"] == "val") & val["method"].isin(done)]
            best = val.sort_values("mAP", ascending=False)["method"].iloc[0]
            qp = qualitative_panel(out_dir, source, best, seed=seeds[0])
            extra += [f"![per-class AP]({pc.name})", "", f"![qualitative, {best}]({qp.name})", ""]
        md = write_suite(out_dir, suite, command=command, extra_md=extra, config_set=config_set,
                         data=source.identity)  # this run's rows only, if the folder holds others
        page = None
        if pictures and done:
            from ..report.webpage import write_html

            try:  # the explorable page (index.html); a page problem must not cost the finished results
                page = write_html(out_dir, suite, source_root=source.root, command=command, config_set=config_set,
                                  data=source.identity)
            except Exception:
                log.exception("could not write %s/index.html", out_dir)
        return {"results_csv": csv, "leaderboard": md, "failures": failures, "timings": timings,
                "wall_s": time.time() - t_start, "page": page}
