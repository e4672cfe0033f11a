#!/usr/bin/env python
"""Per-method cost: tiny-config training throughput on this CPU (clips/s, forward + backward + AdamW at
batch 16, 8 frames, 64 px, 2 threads) and the full configs' parameter count and forward FLOPs per clip
(built on the meta device, counted with torch.utils.flop_counter, which counts a multiply-add as 2 FLOPs;
methods whose forward needs real values are counted with a real CPU forward when under 400M parameters).

    python benchmarks/method_throughput.py [--methods all] [--steps 10] [--no-flops] [--csv out.csv]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ravar_bench.config import load_config  # noqa: E402
from ravar_bench.factory import build_from_config, count_params  # noqa: E402
from ravar_bench.model.head import ravar_loss  # noqa: E402
from ravar_bench.registry import resolve_methods  # noqa: E402
from ravar_bench.testing import fake_batch  # noqa: E402


def train_throughput(name: str, steps: int) -> float:
    cfg = load_config(name, "tiny")
    torch.manual_seed(0)
    model = build_from_config(cfg).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = fake_batch(cfg, 16)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        out = model(batch)
        loss = ravar_loss(out["logits"], out["boxes"], batch["labels"], batch["box"])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:  # the first steps pay for lazy initialisation
            times.append(time.perf_counter() - t0)
    return 16 / (sum(times) / len(times))


def full_costs(name: str, flops: bool, real_limit_m: float = 400.0) -> tuple[int, float, str]:
    """Full-config parameters and forward GFLOPs for one clip: counted on the meta device, or, where a method
    needs real values (``.item()``, data-dependent ops), by a real CPU forward when it has < real_limit_m M params."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = load_config(name, "full")
    model = build_from_config(cfg, device="meta").eval()
    params = count_params(model)
    if not flops:
        return params, float("nan"), "-"
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(fake_batch(cfg, 1, device="meta"))
        return params, fc.get_total_flops() / 1e9, "meta"
    except Exception:
        pass
    if params / 1e6 > real_limit_m:
        return params, float("nan"), f"> {real_limit_m:.0f}M params, not run"
    try:
        torch.manual_seed(0)
        real = build_from_config(cfg).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            real(fake_batch(cfg, 1))
        return params, fc.get_total_flops() / 1e9, "cpu"
    except Exception as e:
        return params, float("nan"), f"failed: {type(e).__name__}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="all")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--no-flops", action="store_true")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    print(f"{'method':28s} {'tiny clips/s':>12s} {'tiny ms/step':>12s} {'full params (M)':>16s} "
          f"{'full GFLOPs/clip':>17s}  counted")
    for name in resolve_methods(args.methods):
        cps = train_throughput(name, args.steps)
        p, gf, how = full_costs(name, not args.no_flops)
        rows.append(dict(method=name, tiny_train_clips_per_s=cps, full_params_M=p / 1e6, full_gflops_per_clip=gf,
                         counted=how))
        print(f"{name:28s} {cps:12.1f} {16000 / cps:12.1f} {p / 1e6:16.1f} {gf:17.1f}  {how}")
    if args.csv:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
