# I3D ResNet3d-50 as mmaction2's i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400 (32 frames, stride 2);
# set model.pretrained to a local mmaction2 I3D checkpoint (e.g. i3d_imagenet-pretrained-r50_..._20220812-e213c223.pth).
_base_ = ["../_base_/full.py"]
data = dict(num_frames=32, frame_stride=2)
model = dict(
    type="i3d",
    backbone=dict(depth=50),
    pretrained=None,
    # ImageNet's pixel statistics, as mmaction2's configs/_base_/models/i3d_r50.py
    # data_preprocessor (mean 123.675, 116.28, 103.53; std 58.395, 57.12, 57.375 on 0-255);
    # the frames (decoded in data.mean / data.std) are renormalised to them
    backbone_mean=(0.485, 0.456, 0.406),
    backbone_std=(0.229, 0.224, 0.225),
)
