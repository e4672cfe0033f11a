# The same mmaction VisionTransformer (tubelet 2, patch 16, mean pooling + fc_norm) at small width and depth.
_base_ = ["../_base_/tiny.py"]
model = dict(type="videomae2_b", backbone=dict(embed_dims=64, depth=2, num_heads=2, patch_size=16))
