# Tiny configs: the same code at small widths, trains on 2 CPU cores in seconds per epoch.
_base_ = ["./runtime.py", "./data_tiny.py", "./text_minilm.py"]
# a higher learning rate than the paper's 1e-4: tiny models start from random weights and see ~10 epochs
train = dict(epochs=10, batch_size=16, lr=2e-3)
# box_mode="candidates": the box is chosen among the key frame's person detections (ravar_bench/model/head.py).
# The actor-centred second pass (head.actor_pass=True, head.actor_size=32) is an option, not the default: within
# 80% of the main job's budget it met no more criteria and lost on the margins (README, "Minutes vs criteria")
head = dict(cls_hidden=(128,), box_hidden=(64,), dropout=0.1, box_mode="candidates")
