# RefAtomNet (XCLIP) (paper Table 4b): XCLIP's video and text encoders (transformers XCLIPModel with the
# XCLIPConfig defaults = microsoft/xclip-base-patch32: ViT-B/32 with cross-frame messages, 1-layer MIT, projection
# 512, CLIP text transformer) instead of BLIP-2; the agent fusion as configs/refatomnet/full.py (referenced, not
# restated). Set model.pretrained to a local XCLIP state-dict file (e.g. a save_pretrained folder's model.safetensors).
_base_ = ["../refatomnet/full.py"]
model = dict(
    _delete_=True,
    type="refatomnet_xclip",
    variant={{_base_.model.variant}},
    width={{_base_.model.width}},
    num_tokens=32,  # BLIP-2's query count, so the fusion sees the token count it has in RefAtomNet
    num_agents={{_base_.model.num_agents}},
    num_heads={{_base_.model.num_heads}},
    alpha={{_base_.model.alpha}},
    mlp_ratio={{_base_.model.mlp_ratio}},
    context_length=32,
    xclip=dict(projection_dim=512, vision_config=dict(patch_size=32)),
    freeze_vision=True,  # as BLIP-2's ViT in RefAtomNet; the MIT and projections train
    freeze_text=True,  # the paper freezes the text encoder
    pretrained=None,
)
