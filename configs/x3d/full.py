# X3D-M as in mmaction2's x3d_m_16x5x1 Kinetics-400 config; set model.pretrained to a local mmaction2 X3D checkpoint.
_base_ = ["../_base_/full.py"]
data = dict(num_frames=16, frame_stride=5)
model = dict(type="x3d", backbone=dict(gamma_w=1, gamma_b=2.25, gamma_d=2.2), pretrained=None)
