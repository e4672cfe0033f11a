"""The main job: methods x seeds on one data source -> results/*.json, results.csv, leaderboard.md."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from ..config import load_config
from ..leaderboard import write_leaderboard
from .data_source import open_source
from .results import write_results_csv
from .text_cache import TextFeatureCache
from .trainer import train_and_evaluate

log = logging.getLogger(__name__)


def run_benchmark(methods: list[str], out_dir: str | Path, data: str = "synthetic", data_root: str | None = None,
                  config_set: str = "tiny", seeds=(0,), epochs: int | None = None, cfg_options: dict | None = None,
                  force: bool = False, progress: bool = True, synth=None, skip_invalid: bool = False,
                  skip_missing_frames: bool = False, device: str | None = None, command: str = "") -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    t_start = time.time()
    source = open_source(data, data_root, synth, skip_invalid=skip_invalid, progress=progress)
    caches: dict = {}
    failures = {}
    timings = {}
    for name in methods:
        opts = dict(cfg_options or {})
        if epochs is not None:
            opts["train.epochs"] = epochs
        cfg = load_config(name, config_set, opts)
        enc_key = repr(sorted(dict(cfg.text_encoder).items()))
        if enc_key not in caches:
            caches[enc_key] = TextFeatureCache(dict(cfg.text_encoder), cache_dir=out_dir / "cache")
        t0 = time.time()
        for seed in seeds:
            try:
                train_and_evaluate(cfg, source, caches[enc_key], seed, out_dir, force=force, progress=progress,
                                   device=device, skip_missing_frames=skip_missing_frames)
            except Exception as e:  # one method's failure must not lose the others' results
                log.exception("%s seed %d failed", name, seed)
                failures[f"{name}/seed{seed}"] = f"{type(e).__name__}: {e}"
        timings[name] = time.time() - t0
        write_results_csv(out_dir)  # after each method, so a kill loses at most the method in flight
    csv = write_results_csv(out_dir)
    md = write_leaderboard(out_dir, command=command)
    return {"results_csv": csv, "leaderboard": md, "failures": failures, "timings": timings,
            "wall_s": time.time() - t_start}
