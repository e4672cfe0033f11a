# The same Hiera code at small width and depth. 64 px -> 16x16 spatial tokens: divisible by
# 2 ** (len(stages) - 1) = 8 and by the (1, 8, 8) mask unit.
_base_ = ["../_base_/tiny.py"]
model = dict(type="hiera_b", backbone=dict(embed_dim=16, num_heads=1, stages=(1, 1, 1, 1)))
