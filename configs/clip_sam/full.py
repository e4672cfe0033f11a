# CLIP+SAM as published: SAM ViT-B (transformers SamModel defaults = sam-vit-base: 1024 px, ViT-B image encoder,
# prompt encoder, two-way mask decoder) + CLIP ViT-B/16 (open_clip). Local weights only:
# model.sam_pretrained=/path/to/sam-vit-base (folder with model.safetensors, or the file) and
# model.clip.pretrained=/path/to/open_clip_ViT-B-16.bin
_base_ = ["../_base_/full.py"]
model = dict(
    type="clip_sam",
    points_per_side=8,  # SAM's automatic generator uses 32x32; 8x8 keeps SAM's decoder pass affordable per step
    max_regions=8,      # the 8 masks with the highest predicted IoU are encoded by CLIP
    context_length=77,
    sam=dict(),          # transformers' SamConfig defaults: SAM ViT-B
    sam_pretrained=None,
    clip=dict(model_name="ViT-B-16", pretrained=None),
)
