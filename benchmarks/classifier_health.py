#!/usr/bin/env python
"""Whether each method's classifier is alive: its input's parts and its hidden units, read on the val split.

For a finished main job (its run folder and the data cache it generated), per method: how much the action scores
vary over val instances, how many of the classifier's first-layer units are ever > 0, the first layer's weight norm
for each part of its input, and each part's scale (the whole-clip feature, the chosen region's, the actor pass's).
A classifier whose units are all dead outputs its bias: the label prior (benchmarks/default_levers.md, session 8).

    python benchmarks/classifier_health.py RUN_DIR CACHE_DIR METHOD [METHOD ...]
    python benchmarks/classifier_health.py /work/budget_default/synth0 /work/budget_default/cache_synth0 i3d x3d

CACHE_DIR is the RAVAR_CACHE of the run (data seed 0; the default data sizes).
"""
import sys
from pathlib import Path

import torch
from mmengine.config import Config

from ravar_bench.data.synthetic import SynthConfig
from ravar_bench.engine.data_source import open_source
from ravar_bench.engine.text_cache import TextFeatureCache
from ravar_bench.engine.trainer import make_loader, predict
from ravar_bench.factory import build_from_config

torch.set_num_threads(2)
if len(sys.argv) < 4:
    sys.exit(__doc__)
run, cache = Path(sys.argv[1]), sys.argv[2]
src = open_source("synthetic", synth=SynthConfig(seed=0), cache_dir=cache, progress=False)
for name in sys.argv[3:]:
    work = run / "runs" / name / "seed0"
    cfg = Config.fromfile(str(work / "config.py"))
    model = build_from_config(cfg)
    sd = torch.load(work / "model.pt", weights_only=False, map_location="cpu")
    sd = sd.get("model", sd) if isinstance(sd, dict) else sd
    model.load_state_dict(sd)
    cap = {}
    lin = model.head.cls[0]
    lin.register_forward_hook(lambda m, i, o: cap.setdefault("x", []).append(i[0].detach()) or
                              cap.setdefault("h", []).append(o.detach()))
    _, loader = make_loader(src, "val", cfg, model.needs, shuffle=False)
    tc = TextFeatureCache(dict(cfg.text_encoder))
    pred = predict(model, loader, tc)
    x, h = torch.cat(cap["x"]), torch.cat(cap["h"])
    d = model.method.feat_dim
    parts = {"clip": x[:, :d], "actor": x[:, -d:]}
    if x.shape[1] > 2 * d:
        parts["region"] = x[:, d:-d]
    s = pred["scores"]
    print(name, "score std over instances (mean over classes) %.4f" % s.std(0).mean(),
          "| alive hidden units %d / %d" % (int((h > 0).any(0).sum()), h.shape[1]),
          "| W1 col-norm clip %.3f actor %.3f" % (lin.weight.detach()[:, :d].norm(dim=0).mean(), lin.weight.detach()[:, -d:].norm(dim=0).mean()))
    for k, v in parts.items():
        print("   %-6s |x| mean %.3f  per-dim std over instances %.4f  mean abs %.3f" %
              (k, v.norm(dim=1).mean(), v.std(0).mean(), v.abs().mean()))
