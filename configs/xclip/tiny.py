_base_ = ["../_base_/tiny.py"]
model = dict(
    type="xclip",
    towers="clip",  # or "hf_xclip" (--cfg-options model.towers=hf_xclip)
    temporal_layers=2,
    context_length=32,
    clip=dict(embed_dim=64, vision=dict(image_size=64, layers=2, width=64, patch_size=16, head_width=32),
              text=dict(context_length=32, vocab_size=49408, width=64, heads=2, layers=2)),
    xclip=dict(
        projection_dim=64, prompt_layers=1, prompt_num_attention_heads=2,
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=32),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                           patch_size=16, mit_hidden_size=64, mit_intermediate_size=128, mit_num_hidden_layers=1,
                           mit_num_attention_heads=2),
    ),
)
