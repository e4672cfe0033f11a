# VideoMAE V2 ViT-B/16 as mmaction2's vit-base-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_kinetics-400 (16 frames,
# stride 4); set model.pretrained to a local mmaction2 checkpoint (..._20230510-3e7f93b2.pth).
_base_ = ["../_base_/full.py"]
data = dict(num_frames=16, frame_stride=4)
model = dict(
    type="videomae2_b",
    backbone=dict(embed_dims=768, depth=12, num_heads=12, patch_size=16),
    pretrained=None,
    # ImageNet's pixel statistics, as mmaction2's vit-base-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_kinetics-400
    # data_preprocessor (mean 123.675, 116.28, 103.53; std 58.395, 57.12, 57.375 on 0-255);
    # the frames (decoded in data.mean / data.std) are renormalised to them
    backbone_mean=(0.485, 0.456, 0.406),
    backbone_std=(0.229, 0.224, 0.225),
)
