#!/usr/bin/env python
"""Clip loader throughput vs the raw JPEG decode rate of the same frames.

Raw: torchvision.io.decode_jpeg on each file of each clip, one process (what any loader must at least do).
Loader: ClipDataset (decode + resize + sampling), no in-memory cache, through a DataLoader with 0 / 2 workers
and prefetching, collated as in training (uint8; normalised where the model runs). Target: loader >= 80% of
the raw rate.

    python benchmarks/loader_throughput.py [--clips 200] [--size 64]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ravar_bench.data.dataset import ClipDataset  # noqa: E402
from ravar_bench.data.refava import load_split  # noqa: E402
from ravar_bench.data.synthetic import SynthConfig, ensure_synthetic  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--num-frames", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = ensure_synthetic(SynthConfig())
    inst, _ = load_split(root, "train")
    seen, clips = set(), []
    for i in inst:  # one instance per clip: every clip decoded once
        if i.clip_key not in seen:
            seen.add(i.clip_key)
            clips.append(i)
    clips = clips[: args.clips]
    data = dict(num_frames=args.num_frames, frame_stride=4, img_size=args.size, mean=(0.5,) * 3, std=(0.25,) * 3,
                cache_decoded=False)
    ds = ClipDataset(clips, root, data, needs={"video"})
    paths = [ds.layout.path(ds.frames_dir, c.video_id, k) for c in clips for k in ds._frame_indices(c)]
    from torchvision.io import decode_jpeg, read_file

    t0 = time.perf_counter()
    for p in paths:
        decode_jpeg(read_file(str(p)))
    raw = len(clips) / (time.perf_counter() - t0)
    print(f"clips: {len(clips)} x {args.num_frames} frames, resized to {args.size}px")
    print(f"raw decode_jpeg, 1 process:     {raw:8.1f} clips/s  ({raw * args.num_frames:.0f} frames/s)")
    for workers in (0, 2):
        dl = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=workers, collate_fn=ds.collate,
                                         prefetch_factor=4 if workers else None, persistent_workers=workers > 0)
        sum(len(b["key"]) for b in dl)  # warm-up pass: worker start-up and imports are not throughput
        t0 = time.perf_counter()
        n = sum(len(b["key"]) for b in dl)
        rate = n / (time.perf_counter() - t0)
        print(f"ClipDataset, {workers} workers:        {rate:8.1f} clips/s  = {100 * rate / raw:5.1f}% of raw "
              f"(target >= 80%)")


if __name__ == "__main__":
    main()
