_base_ = ["../_base_/tiny.py"]
model = dict(
    type="singularity",
    vision_type="beit",
    vision=dict(patch_size=16, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                use_relative_position_bias=True),
    text=dict(vocab_size=30522, hidden_size=64, num_hidden_layers=3, num_attention_heads=2, intermediate_size=128,
              max_position_embeddings=64),
    fusion_layers=1,
    eval_frame_ensemble="concat",
)
