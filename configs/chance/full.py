_base_ = ["../_base_/full.py"]
model = dict(type="chance", dim=16)
