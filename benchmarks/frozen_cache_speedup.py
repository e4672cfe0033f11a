#!/usr/bin/env python
"""Epoch time of RefAtomNet (tiny widths, but a 4-layer frozen ViT so the frozen part weighs as it does at full
size) with and without the frozen-feature cache, on the default RefAVA-Synth train split. Epoch 1 fills the
cache; epoch 2 is what every later epoch costs.

    python benchmarks/frozen_cache_speedup.py [--vit-layers 4] [--vit-width 128]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ravar_bench.config import load_config  # noqa: E402
from ravar_bench.engine.data_source import open_source  # noqa: E402
from ravar_bench.engine.text_cache import TextFeatureCache  # noqa: E402
from ravar_bench.engine.trainer import make_loader  # noqa: E402
from ravar_bench.factory import build_from_config  # noqa: E402
from ravar_bench.model.head import ravar_loss  # noqa: E402


def epoch_times(cfg, source, tc, use_cache: bool) -> list[float]:
    torch.manual_seed(0)
    model = build_from_config(cfg).train()
    model.method.visual.feature_cache.enabled = use_cache
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    _, loader = make_loader(source, "train", cfg, model.needs, shuffle=True, generator=torch.Generator().manual_seed(0))
    out = []
    for _ in range(2):
        t0 = time.perf_counter()
        for batch in loader:
            batch = tc.add_to_batch(batch, model.needs)
            o = model(batch)
            loss = ravar_loss(o["logits"], o["boxes"], batch["labels"], batch["box"])["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        out.append(time.perf_counter() - t0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vit-layers", type=int, default=4)
    ap.add_argument("--vit-width", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = load_config("refatomnet", "tiny", {"model.blip2.vision.num_hidden_layers": args.vit_layers,
                                             "model.blip2.vision.hidden_size": args.vit_width,
                                             "model.blip2.vision.intermediate_size": 4 * args.vit_width})
    source = open_source("synthetic", progress=False)
    tc = TextFeatureCache(dict(cfg.text_encoder))
    tc.prepare([i.text for i in source.splits["train"]])
    source.detections("train")
    epoch_times(cfg, source, tc, False)  # warm-up: decode the clips into memory once for both runs
    off = epoch_times(cfg, source, tc, False)
    on = epoch_times(cfg, source, tc, True)
    print(f"frozen ViT: {args.vit_layers} layers, width {args.vit_width}; {len(source.splits['train'])} train instances")
    print(f"without cache: epoch 1 {off[0]:6.1f} s, epoch 2 {off[1]:6.1f} s")
    print(f"with cache:    epoch 1 {on[0]:6.1f} s (fills it), epoch 2 {on[1]:6.1f} s")
    print(f"epoch-time ratio (epoch 2, without / with): {off[1] / on[1]:.2f}x")


if __name__ == "__main__":
    main()
