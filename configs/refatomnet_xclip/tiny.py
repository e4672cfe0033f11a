# RefAtomNet (XCLIP) at tiny width (see full.py); the agent fusion as configs/refatomnet/tiny.py (referenced).
_base_ = ["../refatomnet/tiny.py"]
model = dict(
    _delete_=True,
    type="refatomnet_xclip",
    variant={{_base_.model.variant}},
    width={{_base_.model.width}},
    num_tokens=8,  # the tiny Q-Former's query count
    num_agents={{_base_.model.num_agents}},
    num_heads={{_base_.model.num_heads}},
    alpha={{_base_.model.alpha}},
    mlp_ratio={{_base_.model.mlp_ratio}},
    context_length=32,
    xclip=dict(
        projection_dim=64, prompt_layers=1, prompt_num_attention_heads=2,
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           patch_size=16, mit_hidden_size=64, mit_intermediate_size=128, mit_num_hidden_layers=1,
                           mit_num_attention_heads=2),
    ),
    freeze_vision=True,
    freeze_text=True,
    pretrained=None,
)
