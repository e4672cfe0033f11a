# Tiny configs: the same code at small widths, trains on 2 CPU cores in seconds per epoch.
_base_ = ["./runtime.py", "./data_tiny.py", "./text_minilm.py"]
# Every tiny method starts from the weights `ravar-bench pretrain` made on a corpus of its own (the tiny analogue
# of the paper's Kinetics / CLIP / BLIP-2 / ImageNet starts; README, "Starting points"); "scratch": random weights
init = dict(weights="pretrained", instances="all")
# 5 epochs with the pretrained start and the actor pass, linear warm-up then decay to zero, the classifier's bias
# at the label prior: the recipe for a few hundred steps (benchmarks/default_levers.md, e11)
train = dict(epochs=5, batch_size=16, lr=2e-3, prior_bias=True)
# box_mode="candidates": the box is chosen among the key frame's person detections (ravar_bench/model/head.py).
# actor_pass: a second instance of the method classifies the chosen person from a 32 px crop of the frames as
# stored (actor_source="stored"; 160 x 120 for RefAVA-Synth) beside the whole-clip feature
head = dict(cls_hidden=(128,), box_hidden=(64,), dropout=0.1, box_mode="candidates", actor_pass=True, actor_size=32,
            actor_source="stored")
