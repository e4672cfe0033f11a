# RefAtomNet (XCLIP) (paper Table 4b): XCLIP's video and text encoders (transformers XCLIPModel with the
# XCLIPConfig defaults = microsoft/xclip-base-patch32: ViT-B/32 with cross-frame messages, 1-layer MIT, projection
# 512, CLIP text transformer) instead of BLIP-2; the rest as configs/refatomnet/full.py. Set model.pretrained to a
# local XCLIP state-dict file (e.g. the model.safetensors of a save_pretrained folder).
_base_ = ["../refatomnet/full.py"]
model = dict(
    _delete_=True,
    type="refatomnet_xclip",
    variant="paper",
    width=768,
    num_tokens=32,
    num_agents=4,
    num_heads=1,
    alpha=0.125,
    mlp_ratio=4.0,
    context_length=32,
    xclip=dict(projection_dim=512, vision_config=dict(patch_size=32)),
    freeze_vision=True,  # as BLIP-2's ViT in RefAtomNet; the MIT and projections train
    freeze_text=True,  # the paper freezes the text encoder
    pretrained=None,
)
