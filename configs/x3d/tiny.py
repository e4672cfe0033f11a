# The same X3D code at small width: base width 24 * 0.25 -> 8 channels (X3D rounds to multiples of 8),
# bottleneck expansion 1.0, half depth (blocks (1, 1, 3, 2)); conv5 gives 64 channels. Depthwise 3D
# convolutions are slow on CPU, so width is what keeps a training step within the tiny budget.
_base_ = ["../_base_/tiny.py"]
model = dict(type="x3d", backbone=dict(gamma_w=0.25, gamma_b=1.0, gamma_d=0.5))
