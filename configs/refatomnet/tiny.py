# RefAtomNet at tiny width for the CPU benchmark: the same code, a 1-layer ViT (frozen, as the paper's; a usable
# initializer_range; `ravar-bench pretrain` trains it, so it is frozen pretrained: e17) and a 2-layer Q-Former with 8
# queries. Width 48, not 64: at 64 with one head the released
# scale head_dim ** -0.5 would equal the paper's alpha = 0.125 and hide that difference between the variants.
_base_ = ["../_base_/tiny.py"]
model = dict(
    type="refatomnet",
    variant="paper",
    text_path="qformer",  # Eq. 1: frozen text features -> P_RT -> the Q-Former's text side; "projection": P_RT only
    width=48,
    num_agents=4,
    num_heads=1,
    alpha=0.125,
    mlp_ratio=2.0,
    blip2=dict(
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=16,
                    initializer_range=0.02),
        qformer=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                     cross_attention_frequency=2),
        num_query_tokens=8,
        freeze_vision=True,
        pretrained=None,
    ),
)
