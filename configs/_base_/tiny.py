# Tiny configs: the same code at small widths, trains on 2 CPU cores in seconds per epoch.
_base_ = ["./runtime.py", "./data_tiny.py", "./text_minilm.py"]
# The starting point: "scratch" (random weights) is still the default; "pretrained" loads the weights
# `ravar-bench pretrain` made and the package ships (README, "Starting points"); instances="actor": only the actor
# pass's instance starts from them (e12 in benchmarks/default_levers.md), "all": both instances (e11).
# The e12 recipe met its adoption rule; it is not the default yet (README, "The committed leaderboard"):
#   --cfg-options init.weights=pretrained init.instances=actor head.actor_pass=True head.actor_size=32
#                 head.actor_source=stored train.epochs=5 train.prior_bias=True
init = dict(weights="scratch", instances="actor")
# a higher learning rate than the paper's 1e-4: tiny models start from random weights and see ~10 epochs
train = dict(epochs=10, batch_size=16, lr=2e-3, prior_bias=False)
# box_mode="candidates": the box is chosen among the key frame's person detections (ravar_bench/model/head.py).
# The actor-centred second pass (head.actor_pass=True, head.actor_size=32, head.actor_source="stored": cropped from
# the frames as stored) is an option here (README, "Minutes vs criteria")
head = dict(cls_hidden=(128,), box_hidden=(64,), dropout=0.1, box_mode="candidates", actor_source="stored")
