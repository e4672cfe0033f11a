#!/usr/bin/env python
"""Where a method loses what its tower sees: the pretext's score of its feature, or of an inner sub-module's output.

Trains the method's tiny instance at SIZE px on the pretraining corpus exactly as `ravar-bench pretrain` does (the
same crops, sentence, towers unfrozen, pretext head and loss, AdamW, batch 16, clipping 1.0, seed 0), but for EPOCHS
passes at a constant learning rate (no schedule: a diagnostic, not a shipped file), then prints the pretext score
(action mAP, attribute accuracies) on the corpus's train and held-out movies. ``--tap MODULE``: the pretext head
reads that sub-module's output instead of the method's feature, mean-pooled over every axis but the batch's and the
last (the method's forward still runs whole), so the two scores say whether what the tap sees reaches the feature.

    python benchmarks/pretext_probe.py askanything 32 --epochs 4                   # its feature: the LLM's answer
    python benchmarks/pretext_probe.py askanything 32 --epochs 4 --tap llama_proj  # its Q-Former's video tokens
    python benchmarks/pretext_probe.py askanything 32 --epochs 4 --lr 5e-4

Run it with nothing else running (2 threads); the corpus is generated into the cache on first use.
"""
import argparse

import torch

from ravar_bench.config import load_config
from ravar_bench.data.dataset import stored_resolution
from ravar_bench.engine.data_source import open_source
from ravar_bench.engine.text_cache import TextFeatureCache
from ravar_bench.engine.trainer import make_loader, seed_everything
from ravar_bench.factory import model_kwargs
from ravar_bench.pretraining import run as P
from ravar_bench.pretraining.corpus import CORPUS, attribute_table
from ravar_bench.pretraining.pretext import PretextHead, pretext_loss
from ravar_bench.registry import METHODS

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("method")
ap.add_argument("size", type=int)
ap.add_argument("--epochs", type=int, default=4)
ap.add_argument("--lr", type=float, default=P.RECIPE["lr"])
ap.add_argument("--tap", default=None, help="a sub-module's name (model.named_modules()) whose output is probed")
args = ap.parse_args()
torch.set_num_threads(2)

src = open_source("synthetic", synth=CORPUS, progress=False)
text_cache = TextFeatureCache(dict(load_config(args.method, "tiny").text_encoder))
base_cfg, cfg = P.instance_config(args.method, args.size, train_towers=True)
seed_everything(P.RECIPE["seed"])
method = METHODS.get(args.method)(**model_kwargs(cfg))
needs = set(method.needs) | stored_resolution(method.needs)
table = attribute_table(src.root)
data_cfg = base_cfg.copy()
data_cfg.train.batch_size = P.RECIPE["batch_size"]
_, train_loader = make_loader(src, "train", data_cfg, needs, shuffle=True,
                              generator=torch.Generator().manual_seed(P.RECIPE["seed"]))
_, train_eval = make_loader(src, "train", data_cfg, needs, shuffle=False)
_, val_loader = make_loader(src, "val", data_cfg, needs, shuffle=False)
tapped = {}
if args.tap:
    modules = dict(method.named_modules())
    if args.tap not in modules:
        ap.error(f"--tap {args.tap!r}: {args.method} has no such sub-module (e.g. {sorted(modules)[1:6]})")

    def keep(_mod, _inp, out):
        out = out[0] if isinstance(out, tuple) else out
        tapped["x"] = out.float().flatten(1, -2).mean(1) if out.dim() > 2 else out.float()

    modules[args.tap].register_forward_hook(keep)


class Probe(torch.nn.Module):
    """The pretext head on the probed output: the method's feature, or (``--tap``) the tapped sub-module's. As a
    head for the pretraining's own ``_forward`` / ``_score``, so the probe trains and scores as they do."""

    def __init__(self, head: torch.nn.Module):
        super().__init__()
        self.head = head

    def forward(self, feat):
        return self.head(tapped["x"] if args.tap else feat)


with torch.no_grad():  # the probed output's width, from the first held-out batch
    method.eval()
    first = next(P._batches(needs, val_loader, text_cache, base_cfg, args.size, table))[0]
    width = P._forward(method, Probe(torch.nn.Identity()), first).shape[-1]
head = Probe(PretextHead(width))

params = [p for p in list(method.parameters()) + list(head.parameters()) if p.requires_grad]
opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=P.RECIPE["weight_decay"])
for epoch in range(args.epochs):
    method.train()
    head.train()
    for crop, y, a, _ in P._batches(needs, train_loader, text_cache, base_cfg, args.size, table):
        loss = pretext_loss(P._forward(method, head, crop), y, a)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, P.RECIPE["grad_clip"])
        opt.step()
    print(f"epoch {epoch + 1}: last loss {loss.item():.3f}", flush=True)

for name, loader in (("train", train_eval), ("held-out", val_loader)):
    s = P._score(method, head, loader, needs, text_cache, base_cfg, args.size, table)
    print(f"{args.method}@{args.size} {'tap ' + args.tap if args.tap else 'feature'} lr {args.lr:g}, {name}: "
          + ", ".join(f"{k} {v:.1f}" for k, v in s.items()))
