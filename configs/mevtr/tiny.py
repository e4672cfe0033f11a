_base_ = ["../_base_/tiny.py"]
model = dict(
    type="mevtr",
    num_events=3,
    temporal="meanP",
    context_length=32,
    clip=dict(embed_dim=64, vision=dict(image_size=64, layers=2, width=64, patch_size=16, head_width=32),
              text=dict(context_length=32, vocab_size=49408, width=64, heads=2, layers=2)),
)
