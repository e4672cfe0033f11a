_base_ = ["../_base_/tiny.py"]
# A narrow timm ResNet (one block per stage, output stride 16) for SAW's ResNet-101, on frames resized to
# 32 px (SAW's `resolution`; 128 frames per batch make the frame CNN the whole cost); 2 Ref-Transformer layers
# at width 32. The backbone trains here (freeze_backbone=False): frozen random features would never improve.
model = dict(
    type="su_vos",
    backbone=dict(model_name="resnet18", layers=[1, 1, 1, 1], channels=[8, 16, 32, 64], stem_width=8,
                  output_stride=16),
    resolution=32,
    hidden=32,
    layers=2,
    ffn=32,
    groups=4,
    mutan_heads=5,
    multi_scale=True,
    freeze_backbone=False,
)
