_base_ = ["../_base_/tiny.py"]
model = dict(type="x3d", backbone=dict(gamma_w=0.5, gamma_b=1.0, gamma_d=0.5))
