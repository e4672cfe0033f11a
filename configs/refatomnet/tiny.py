# RefAtomNet at tiny width for the CPU benchmark: the same code, a 1-layer ViT (frozen, random init with a usable
# initializer_range) and a 2-layer Q-Former with 8 queries.
_base_ = ["../_base_/tiny.py"]
model = dict(
    type="refatomnet",
    variant="paper",
    width=64,
    num_agents=4,
    num_heads=1,
    alpha=0.125,
    mlp_ratio=2.0,
    blip2=dict(
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=16,
                    initializer_range=0.02),
        qformer=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                     cross_attention_frequency=2),
        num_query_tokens=8,
        freeze_vision=True,
        pretrained=None,
    ),
)
