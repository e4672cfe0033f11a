# Hiera-B 16x224 (hiera-transformer's hiera_base_16x224, K400; 16 frames, stride 4);
# set model.pretrained to a local Hiera checkpoint (hiera_base_16x224.pth, keys under 'model_state').
_base_ = ["../_base_/full.py"]
data = dict(num_frames=16, frame_stride=4)
model = dict(type="hiera_b", backbone=dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)), pretrained=None)
