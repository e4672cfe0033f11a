# MViTv2-B as mmaction2's mvit-base-p244_32x3x1_kinetics400 (SlowFast's K400 MViTv2-B 32x3, 32 frames, stride 3);
# set model.pretrained to a local mmaction2 checkpoint (mvit-base-p244_32x3x1_kinetics400-rgb_20221021-f392cd2d.pth).
_base_ = ["../_base_/full.py"]
data = dict(num_frames=32, frame_stride=3)
model = dict(
    type="mvitv2_b",
    backbone=dict(arch="base", drop_path_rate=0.3),
    pretrained=None,
    # Kinetics' one-value statistics, as mmaction2's mvit-base-p244_32x3x1_kinetics400-rgb data_preprocessor
    # (mean 114.75, std 57.375 on 0-255; SlowFast's DATA.MEAN 0.45 / DATA.STD 0.225);
    # the frames (decoded in data.mean / data.std) are renormalised to them
    backbone_mean=(0.45, 0.45, 0.45),
    backbone_std=(0.225, 0.225, 0.225),
)
