# Hiera-B 16x224 (hiera-transformer's hiera_base_16x224, K400; 16 frames, stride 4);
# set model.pretrained to a local Hiera checkpoint (hiera_base_16x224.pth, keys under 'model_state').
_base_ = ["../_base_/full.py"]
data = dict(num_frames=16, frame_stride=4)
model = dict(
    type="hiera_b",
    backbone=dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)),
    pretrained=None,
    # Hiera's video statistics, as its examples/inference.ipynb normalises a clip (mean 0.45; std 0.225, the
    # notebook's third 0.255 read as the 0.225 of MAE-ST / SlowFast that Hiera's video training follows);
    # the frames (decoded in data.mean / data.std) are renormalised to them
    backbone_mean=(0.45, 0.45, 0.45),
    backbone_std=(0.225, 0.225, 0.225),
)
