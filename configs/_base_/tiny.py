# Tiny configs: the same code at small widths, trains on 2 CPU cores in seconds per epoch.
_base_ = ["./runtime.py", "./data_tiny.py", "./text_minilm.py"]
# a higher learning rate than the paper's 1e-4: tiny models start from random weights and see ~10 epochs;
# 7 epochs, not 10, pay for the actor pass within 80% of the main job's 15 minutes (README, "Minutes vs criteria")
train = dict(epochs=7, batch_size=16, lr=2e-3)
# box_mode="candidates": the box is chosen among the key frame's person detections (ravar_bench/head.py).
# actor_pass: a second instance of the method reads a 32 px crop around the chosen person, as two-stage AVA
# detectors classify a person from its region (ravar_bench/actor_crop.py; benchmarks/default_levers.md, e9)
head = dict(cls_hidden=(128,), box_hidden=(64,), dropout=0.1, box_mode="candidates", actor_pass=True, actor_size=32)
