# RefAtomNet (XCLIP) at tiny width (see full.py).
_base_ = ["../refatomnet/tiny.py"]
model = dict(
    _delete_=True,
    type="refatomnet_xclip",
    variant="paper",
    width=64,
    num_tokens=8,
    num_agents=4,
    num_heads=1,
    alpha=0.125,
    mlp_ratio=2.0,
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
