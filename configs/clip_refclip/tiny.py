_base_ = ["../_base_/tiny.py"]
# A narrow timm ResNet stands in for DarkNet-53 (2x2 stride-32 grid at 64 px, all 4 cells kept). The detector
# trains here (freeze_detector=False): without pretrained YOLO weights a frozen random one never improves.
model = dict(
    type="clip_refclip",
    backbone=dict(model_name="resnet18", layers=[1, 1, 1, 1], channels=[8, 16, 32, 64], stem_width=8),
    hidden=32,
    select_num=4,
    freeze_detector=False,
    context_length=32,
    clip=dict(embed_dim=64, vision=dict(image_size=32, layers=1, width=64, patch_size=8, head_width=32),
              text=dict(context_length=32, vocab_size=49408, width=32, heads=2, layers=1)),
)
