# The same MViT code (pooling attention with depthwise pool convs, decomposed relative positions, residual
# pooling, class token) at width 8 -> 64 over 4 blocks with a downscale after each of the first three.
_base_ = ["../_base_/tiny.py"]
model = dict(type="mvitv2_b", backbone=dict(
    arch=dict(embed_dims=8, num_layers=4, num_heads=1, downscale_indices=[1, 2, 3]), drop_path_rate=0.0))
