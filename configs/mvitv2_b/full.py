# MViTv2-B as mmaction2's mvit-base-p244_32x3x1_kinetics400 (SlowFast's K400 MViTv2-B 32x3, 32 frames, stride 3);
# set model.pretrained to a local mmaction2 checkpoint (mvit-base-p244_32x3x1_kinetics400-rgb_20221021-f392cd2d.pth).
_base_ = ["../_base_/full.py"]
data = dict(num_frames=32, frame_stride=3)
model = dict(type="mvitv2_b", backbone=dict(arch="base", drop_path_rate=0.3), pretrained=None)
