_base_ = ["../_base_/tiny.py"]
model = dict(type="chance", dim=16)
