# CLIP+SAM as published: SAM ViT-B (transformers SamModel defaults = sam-vit-base: 1024 px, ViT-B image encoder,
# prompt encoder, two-way mask decoder) + CLIP ViT-B/16 (open_clip). Local weights only:
# model.sam_pretrained=/path/to/sam-vit-base (folder with model.safetensors, or the file) and
# model.clip.pretrained=/path/to/ViT-B-16.pt (OpenAI) or an open_clip file
_base_ = ["../_base_/full.py"]
model = dict(
    type="clip_sam",
    points_per_side=8,  # SAM's automatic generator uses 32x32; 8x8 keeps SAM's decoder pass affordable per step
    max_regions=8,      # the 8 masks with the highest predicted IoU are encoded by CLIP
    context_length=77,
    sam=dict(),          # transformers' SamConfig defaults: SAM ViT-B
    sam_pretrained=None,
    # OpenAI's ViT-B-16.pt was trained with QuickGELU (open_clip builds it as "ViT-B-16-quickgelu"); for a LAION
    # open_clip file set model.clip.model_name=ViT-B-16 (plain GELU)
    clip=dict(model_name="ViT-B-16-quickgelu", pretrained=None),
)
