# Tiny configs: the same code at small widths, trains on 2 CPU cores in seconds per epoch.
_base_ = ["./runtime.py", "./data_tiny.py", "./text_minilm.py"]
# The starting point (README, "Starting points"): "pretrained" loads the weights `ravar-bench pretrain` made and the
# package ships; instances="actor": only the actor pass's instance starts from them, the whole-clip instance from
# random weights (e12 in benchmarks/default_levers.md; "all": both instances, e11). "scratch": random weights, the
# ablation the README reports beside the default.
init = dict(weights="pretrained", instances="actor")
# a higher learning rate than the paper's 1e-4: tiny models see a few hundred optimiser steps; prior_bias: the
# classifier's output bias starts at the label prior (Focal Loss's initialisation); 4 epochs, the last scored (5 with
# cand_appearance below took the main job over its 15 minutes: e14 / e16 in benchmarks/default_levers.md)
train = dict(epochs=4, batch_size=16, lr=2e-3, prior_bias=True)
# box_mode="candidates": the box is chosen among the key frame's person detections (ravar_bench/model/head.py).
# The actor-centred second pass crops the chosen person from the frames as stored (160 x 120, actor_source="stored")
# resampled to 32 px, and the classifier reads its feature beside the whole clip's (README, "Minutes vs criteria").
# actor_norm: that feature is layer-normalised first, because the methods' feature scales differ by orders of
# magnitude and I3D's classifier died on its scale (e13 in benchmarks/default_levers.md)
head = dict(cls_hidden=(128,), box_hidden=(64,), dropout=0.1, box_mode="candidates", actor_pass=True, actor_size=32,
            actor_source="stored", actor_norm=True,
            # the chooser also reads each person candidate's appearance, from a frozen copy of the actor instance as
            # it starts (e14 / e16: appearance-only references were localised at chance without it)
            cand_appearance=True)
