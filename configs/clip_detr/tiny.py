_base_ = ["../_base_/tiny.py"]
# Tiny CLIP towers (32 px crops, 8 px patches); DETR output read from the detections cache.
model = dict(
    type="clip_detr",
    detector="cache",
    max_regions=4,
    context_length=32,
    clip=dict(embed_dim=64, vision=dict(image_size=32, layers=1, width=64, patch_size=8, head_width=32),
              text=dict(context_length=32, vocab_size=49408, width=32, heads=2, layers=1)),
    # used only with detector="detr" (e.g. --cfg-options model.detector=detr): a tiny frozen DETR
    detr=dict(num_labels=91, num_queries=16, d_model=32, encoder_layers=1, decoder_layers=1,
              encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=2, decoder_attention_heads=2,
              backbone=dict(embedding_size=8, hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], layer_type="basic")),
)
