# CLIP4Clip as published: CLIP ViT-B/32 towers (OpenAI weights use QuickGELU), meanP; temporal="seqTransf"
# gives the sequential-transformer variant (4 layers, Luo et al. 2022 Sec. 3.3).
# Set model.clip.pretrained to a local open_clip/OpenAI ViT-B/32 state-dict file (nothing is downloaded).
_base_ = ["../_base_/full.py"]
model = dict(type="clip4clip", temporal="meanP", temporal_layers=4, context_length=32,
             clip=dict(model_name="ViT-B-32-quickgelu", pretrained=None))
