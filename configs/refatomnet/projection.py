# An OVERLAY (``--config-set tiny+projection`` / ``full+projection``): Eq. 1's text path replaced by the frozen
# text encoder's features -> P_RT only, the Q-Former never sees the sentence. The controlled comparison in which
# RefAtomNet's text is exactly what every other method gets (README, "RefAtomNet's size").
model = dict(text_path="projection")
# Another architecture than the one the shipped pretrained tiny files were made for (configs/refatomnet/tiny.py):
# it starts from random weights, as every method without a shipped file of its own does
init = dict(weights="scratch")
