"""Pretrained starting points for the tiny configs: the pretext corpus and targets, the pretraining loop, and the
shipped weights that ``init.weights="pretrained"`` loads (the tiny analogue of the paper's Kinetics / CLIP /
BLIP-2 / ImageNet initialisation; README, "Starting points")."""
