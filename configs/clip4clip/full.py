# CLIP4Clip as published: CLIP ViT-B/32 towers, meanP. Set model.clip.pretrained to a local open_clip file.
_base_ = ["../_base_/full.py"]
model = dict(type="clip4clip", temporal="meanP", context_length=32,
             clip=dict(model_name="ViT-B-32", pretrained=None))
