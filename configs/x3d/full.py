# X3D-M as in mmaction2's x3d_m_16x5x1 Kinetics-400 config; set model.pretrained to a local mmaction2 X3D checkpoint.
_base_ = ["../_base_/full.py"]
data = dict(num_frames=16, frame_stride=5)
model = dict(
    type="x3d",
    backbone=dict(gamma_w=1, gamma_b=2.25, gamma_d=2.2),
    pretrained=None,
    # Kinetics' one-value statistics, as X3D's release (SlowFast: DATA.MEAN 0.45, DATA.STD 0.225) and
    # mmaction2's configs/_base_/models/x3d.py (mean 114.75, std 57.38 on 0-255);
    # the frames (decoded in data.mean / data.std) are renormalised to them
    backbone_mean=(0.45, 0.45, 0.45),
    backbone_std=(0.225, 0.225, 0.225),
)
