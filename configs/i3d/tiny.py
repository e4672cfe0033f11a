# The same I3D network (ResNet3d-50: I3D stem, inflation pattern, bottlenecks) at 1/8 width (base 8 -> 256 out).
_base_ = ["../_base_/tiny.py"]
model = dict(type="i3d", backbone=dict(depth=50, base_channels=8))
