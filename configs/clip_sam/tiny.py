_base_ = ["../_base_/tiny.py"]
# Tiny frozen SAM (64 px, one global-attention block, 4x4 image embedding) on a 3x3 point grid; the 4 masks
# with the highest predicted IoU go to tiny CLIP towers (32 px crops).
model = dict(
    type="clip_sam",
    points_per_side=3,
    max_regions=4,
    context_length=32,
    sam=dict(
        vision=dict(hidden_size=32, output_channels=32, num_hidden_layers=1, num_attention_heads=2, image_size=64,
                    patch_size=16, window_size=0, global_attn_indexes=[0], num_pos_feats=16, mlp_dim=64),
        prompt=dict(hidden_size=32, image_size=64, patch_size=16, mask_input_channels=4),
        decoder=dict(hidden_size=32, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2, iou_head_hidden_dim=32),
    ),
    clip=dict(embed_dim=64, vision=dict(image_size=32, layers=1, width=64, patch_size=8, head_width=32),
              text=dict(context_length=32, vocab_size=49408, width=32, heads=2, layers=1)),
)
