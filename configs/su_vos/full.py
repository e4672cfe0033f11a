# Su et al. ("Sequence as a Whole", TIP'23) encoder with the released SAW defaults: ResNet-101 with frozen
# BatchNorm (frozen), multi-scale layer2-4, hidden 256, 6 Ref-Transformer layers, feed-forward 256, 8 groups,
# 5 MuTAN heads, dropout 0.1. model.pretrained: a local ImageNet ResNet-101 state dict (timm key names).
_base_ = ["../_base_/full.py"]
model = dict(
    type="su_vos",
    backbone=dict(model_name="resnet101"),
    hidden=256,
    layers=6,
    ffn=256,
    groups=8,
    mutan_heads=5,
    multi_scale=True,
    freeze_backbone=True,
    pretrained=None,
    # the ImageNet ResNet-101's statistics (torchvision / timm: mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225)
    backbone_mean=(0.485, 0.456, 0.406),
    backbone_std=(0.229, 0.224, 0.225),
)
