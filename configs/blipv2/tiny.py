# Random-init tiny BLIP-2: the vision tower trains too (a frozen *random* ViT has nothing to preserve; the
# full config freezes it, as BLIP-2 does). initializer_range=0.02: Blip2VisionConfig's default 1e-10 expects
# pretrained weights (see ravar_bench/encoders/blip2.py).
_base_ = ["../_base_/tiny.py"]
model = dict(
    type="blipv2",
    vision=dict(patch_size=16, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                initializer_range=0.02),
    qformer=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 cross_attention_frequency=1, max_position_embeddings=64),
    num_query_tokens=4,
    freeze_vision=False,
)
