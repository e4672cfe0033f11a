"""How RefAtomNet's cross-stream agent-attention fusion scales with the number of visual tokens N, against plain
softmax cross-attention of the same width.

- agent: ``CrossStreamAgentFusion`` (paper variant, Eq. 4-11): agent attention in each of the three streams (each N
  tokens, as the fusion requires) and CAAF + CATF into the visual stream. Cost O(N * Na * C): linear in N.
- softmax: ``SoftmaxCrossAttention``: the N visual tokens attend to the other two streams' 2N tokens with
  torch's scaled_dot_product_attention, followed by the same FFN. Cost O(N * 2N * C): quadratic in N.
Both are timed for forward + backward (sum of the outputs as the loss), float32 on CPU, bfloat16 on CUDA.

Prints one row per N with both times and their growth time(2N)/time(N) (about 2 for linear, about 4 for
quadratic cost once fixed overheads stop dominating), then softmax/agent at N=4096.

    .venv/bin/python benchmarks/agent_attention_scaling.py                 # 256 .. 16384, width 64, < 2 min on CPU
    .venv/bin/python benchmarks/agent_attention_scaling.py --dim 768 --max-n 8192
    .venv/bin/python benchmarks/agent_attention_scaling.py --clock cpu     # on a CPU shared with other jobs
A time budget (``--budget-s``) skips the sizes whose predicted time would exceed it (printed as "skipped").
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ravar_bench.encoders.agent_attention import CrossStreamAgentFusion, SoftmaxCrossAttention  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fwd_bwd(fn, device, min_time: float, max_reps: int, warmup: bool, clock=time.perf_counter) -> float:
    """Best (minimum) time of fn() over repetitions: other load on the machine only ever adds time."""
    if warmup:
        fn()
        _sync(device)
    best, total, reps = float("inf"), 0.0, 0
    while reps < max_reps and (reps == 0 or total < min_time):
        _sync(device)
        t0 = clock()
        fn()
        _sync(device)
        dt = clock() - t0
        best, total, reps = min(best, dt), total + dt, reps + 1
    return best


def make_agent(dim, n, agents, heads, device, dtype):
    mod = CrossStreamAgentFusion(dim, n, num_agents=agents, num_heads=heads, variant="paper").to(device, dtype)
    toks = {k: torch.randn(1, n, dim, device=device, dtype=dtype, requires_grad=True) for k in ("vt", "rt", "ls")}

    def step():
        outs, _ = mod(toks)
        sum(o.float().sum() for o in outs.values()).backward()
    return step


def make_softmax(dim, n, heads, device, dtype):
    mod = SoftmaxCrossAttention(dim, num_heads=heads).to(device, dtype)
    vis = torch.randn(1, n, dim, device=device, dtype=dtype, requires_grad=True)
    ctx = torch.randn(1, 2 * n, dim, device=device, dtype=dtype, requires_grad=True)

    def step():
        mod(vis, ctx).float().sum().backward()
    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--min-n", type=int, default=256)
    ap.add_argument("--max-n", type=int, default=16384)
    ap.add_argument("--dim", type=int, default=64, help="token width C (768 = the full model)")
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu = this process's CPU time summed over its threads (steadier on a shared CPU machine)")
    ap.add_argument("--budget-s", type=float, default=90.0, help="skip sizes predicted to overrun this budget")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    clock = time.process_time if args.clock == "cpu" and dev.type == "cpu" else time.perf_counter
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    sizes = []
    n = args.min_n
    while n <= args.max_n:
        sizes.append(n)
        n *= 2
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"agent-attention fusion vs softmax cross-attention: forward+backward, batch 1, width {args.dim}, "
          f"{args.agents} agents, {args.heads} head(s), {str(dtype).replace('torch.', '')} on {name}, "
          f"{'CPU' if clock is time.process_time else 'wall'} time")
    print(f"{'N':>6} | {'agent ms':>10} {'x(2N/N)':>8} | {'softmax ms':>11} {'x(2N/N)':>8} | {'softmax/agent':>13}")
    start = time.perf_counter()
    res: dict[str, dict[int, float]] = {"agent": {}, "softmax": {}}
    for n in sizes:
        row = {}
        for kind in ("agent", "softmax"):
            prev = res[kind].get(n // 2)
            predicted = (prev * (2 if kind == "agent" else 4) * 2) if prev else 0.0  # x2 for the warm-up run
            left = args.budget_s - (time.perf_counter() - start)
            if prev is None and n != sizes[0]:
                row[kind] = None  # a smaller size was skipped already
                continue
            if predicted > left:
                row[kind] = None
                continue
            fn = (make_agent(args.dim, n, args.agents, args.heads, dev, dtype) if kind == "agent"
                  else make_softmax(args.dim, n, args.heads, dev, dtype))
            big = prev is not None and prev > 1.0
            t = time_fwd_bwd(fn, dev, min_time=0.2, max_reps=1 if big else 5, warmup=True, clock=clock)
            res[kind][n] = row[kind] = t
        cells = []
        for kind in ("agent", "softmax"):
            t, prev = row.get(kind), res[kind].get(n // 2)
            if t is None:
                cells.append(f"{'skipped':>10} {'':>8}" if kind == "agent" else f"{'skipped':>11} {'':>8}")
            else:
                w = 10 if kind == "agent" else 11
                cells.append(f"{t * 1e3:>{w}.2f} {(f'{t / prev:.2f}' if prev else '-'):>8}")
        ratio = (f"{row['softmax'] / row['agent']:.2f}" if row.get("agent") and row.get("softmax") else "-")
        print(f"{n:>6} | {cells[0]} | {cells[1]} | {ratio:>13}", flush=True)
    a, s = res["agent"].get(4096), res["softmax"].get(4096)
    if a and s:
        print(f"at N=4096: softmax / agent = {s / a:.2f} (softmax {s * 1e3:.1f} ms, agent {a * 1e3:.1f} ms)")
    else:
        print("at N=4096: not measured (budget)")
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
