_base_ = ["../_base_/tiny.py"]
model = dict(type="chance", dim=16)
init = dict(weights="scratch")  # reads no pixels: nothing to pretrain
