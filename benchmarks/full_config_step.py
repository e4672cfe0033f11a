#!/usr/bin/env python
"""One training step of each method's FULL config (the published architecture, random weights) on this device:
peak memory and clips/s per precision, through the engine's own precision path (ravar_bench/engine/precision.py:
autocast, frozen towers stored in the compute dtype, GradScaler for fp16).

    python benchmarks/full_config_step.py                                   # all methods, batch 1, fp32 + bf16
    python benchmarks/full_config_step.py --methods refatomnet,clip4clip,x3d --batch 1 --precisions fp32,bf16
    python benchmarks/full_config_step.py --methods refatomnet --device cuda --batch 32 --precisions bf16

Each (method, precision) runs in a fresh child process, so its peak memory is its own: on CUDA
``torch.cuda.max_memory_allocated``, on a CPU the child's peak resident set (``ru_maxrss``, which includes
building the model). A method whose estimated training memory (fp32 weights + fp32 gradients and AdamW's two
moments for the trainable part; activations not counted) exceeds ``--max-gb`` is reported as skipped with its
parameter memory. The step: forward + shared loss + backward + AdamW, on a random batch in the config's shapes
(``ravar_bench.testing.fake_batch``); ``--steps`` timed steps after one untimed warm-up step.
Prints a table (tabulate); ``--csv`` writes it too. It measures; it asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = ["method", "precision", "batch", "device", "params_M", "trainable_M", "param_mem_GB", "est_train_GB",
           "peak_mem_GB", "step_s", "clips_per_s", "loss", "status"]


def sizes(name: str, config_set: str) -> dict:
    """Parameter counts from a meta-device build (no memory) and the training-memory estimate."""
    from ravar_bench.config import load_config
    from ravar_bench.factory import build_from_config, count_params

    model = build_from_config(load_config(name, config_set), device="meta")
    params, trainable = count_params(model), count_params(model, trainable_only=True)
    return {"params_M": params / 1e6, "trainable_M": trainable / 1e6, "param_mem_GB": params * 4 / 1e9,
            "est_train_GB": (params * 4 + trainable * 12) / 1e9}


def child(name: str, config_set: str, precision: str, batches: list[int], device: str, steps: int,
          threads: int) -> list[dict]:
    """Build once (parameters created on the device itself: a 1B-parameter model initialises in seconds on a GPU),
    then per batch size one warm-up step and ``steps`` timed steps; runs inside its own process. On a CPU the peak
    resident set only grows, so with several batch sizes each row's peak includes the earlier ones."""
    import torch

    from ravar_bench.config import load_config
    from ravar_bench.encoders.frozen_cache import frozen_caches
    from ravar_bench.engine.precision import prepare_model
    from ravar_bench.factory import build_from_config
    from ravar_bench.testing import fake_batch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = load_config(name, config_set, cfg_options={"train.precision": precision})
    model = build_from_config(cfg, device=device).train()
    for _, cache in frozen_caches(model):  # every timed step runs the frozen towers too (no per-clip reuse)
        cache.enabled = False
    prec = prepare_model(model, cfg.train, device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    cuda = torch.device(device).type == "cuda"
    rows = []
    for batch in batches:
        try:
            rows.append(_measure(model, prec, opt, fake_batch(cfg, batch, device=device), batch, steps, cuda))
        except torch.OutOfMemoryError as e:
            rows.append({"batch": batch, "status": f"out of memory: {str(e).splitlines()[0][:100]}"})
            torch.cuda.empty_cache()
    return rows


def _measure(model, prec, opt, data, batch, steps, cuda) -> dict:
    import resource

    import torch

    def step() -> float:
        with prec.autocast():
            loss = model(data)["losses"]["loss"]
        opt.zero_grad(set_to_none=True)
        prec.backward(loss)
        prec.step(opt, [p for p in model.parameters() if p.requires_grad], 1.0)
        return float(loss.detach())

    step()  # lazy initialisation, allocator warm-up
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, loss = [], float("nan")
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 1e9
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: KiB
    dt = min(times)  # other load on the machine only ever adds time
    return {"peak_mem_GB": peak, "step_s": dt, "clips_per_s": batch / dt, "loss": loss, "precision": prec.name,
            "batch": batch, "status": "ok"}


def run_one(name, config_set, precision, batches, device, steps, threads, timeout) -> list[dict]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--config-set", config_set,
           "--precisions", precision, "--batch", ",".join(map(str, batches)), "--device", device, "--steps", str(steps),
           "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return [{"batch": b, "status": f"timeout after {timeout:.0f} s"} for b in batches]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("[")]
    if res.returncode != 0 or not lines:
        err = (res.stderr.strip().splitlines() or ["?"])[-1]
        return [{"batch": b, "status": f"failed (rc {res.returncode}): {err[:120]}"} for b in batches]
    return json.loads(lines[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="all", help="all | comma-separated registry names (default: all)")
    ap.add_argument("--config-set", default="full")
    ap.add_argument("--batch", default="1", help="batch size(s), comma-separated: 8,32")
    ap.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16, fp16, auto")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-gb", type=float, default=20.0, help="skip methods whose estimated training memory is larger")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per (method, precision)")
    ap.add_argument("--csv", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("full_config_step: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    precisions = [p for p in args.precisions.split(",") if p]
    try:
        batches = [int(b) for b in str(args.batch).split(",") if b]
    except ValueError:
        print(f"full_config_step: --batch must be integers, got {args.batch!r}", file=sys.stderr)
        return 2
    if args.child:
        print(json.dumps(child(args.child, args.config_set, precisions[0], batches, device, args.steps,
                               args.threads)))
        return 0

    from ravar_bench.registry import list_methods

    known = list_methods()
    names = known if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"full_config_step: unknown method(s) {unknown}; registered: {', '.join(known)}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        try:
            sz = sizes(name, args.config_set)
        except Exception as e:  # a config that cannot even be built on meta is reported, not fatal
            rows.append({"method": name, "status": f"failed to build: {type(e).__name__}: {e}"[:160]})
            continue
        for prec in precisions:
            base = {"method": name, "precision": prec, "device": device, **{k: round(v, 2) for k, v in sz.items()}}
            if device == "cpu" and sz["est_train_GB"] > args.max_gb:
                res = [{"batch": b, "status": f"skipped: needs ~{sz['est_train_GB']:.0f} GB > --max-gb {args.max_gb:g}"}
                       for b in batches]
            else:
                res = run_one(name, args.config_set, prec, batches, device, args.steps, args.threads, args.timeout)
            for r in res:
                rows.append({**base, **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}})
                print(f"{name:28s} {prec:5s} batch {rows[-1].get('batch')}: {rows[-1].get('status')}", file=sys.stderr,
                      flush=True)

    import pandas as pd
    from tabulate import tabulate

    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    where = torch.cuda.get_device_name(0) if device.startswith("cuda") else f"CPU, {args.threads} threads"
    print(f"\nFull-config training step ({args.config_set} configs, random weights) on {where}")
    print(tabulate(df.fillna(""), headers="keys", tablefmt="github", showindex=False))
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
