# I3D ResNet3d-50 as mmaction2's i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400 (32 frames, stride 2);
# set model.pretrained to a local mmaction2 I3D checkpoint (e.g. i3d_imagenet-pretrained-r50_..._20220812-e213c223.pth).
_base_ = ["../_base_/full.py"]
data = dict(num_frames=32, frame_stride=2)
model = dict(type="i3d", backbone=dict(depth=50), pretrained=None)
