# Me-Retriever (MeVTR, Zhang et al. ICCV'23): CLIP ViT-B/32 towers (OpenAI weights: QuickGELU) as CLIP4Clip,
# meanP, key events = k-medoids (KKZ init, cosine distance) over the 8 frame features. K=4 events for
# 8-frame clips is our choice (the released scripts set K per dataset). Set model.clip.pretrained to a local
# open_clip/OpenAI ViT-B/32 state-dict file (nothing is downloaded).
_base_ = ["../_base_/full.py"]
model = dict(type="mevtr", num_events=4, temporal="meanP", temporal_layers=4, context_length=32,
             cluster_distance="cosine", cluster_iters=10,
             clip=dict(model_name="ViT-B-32-quickgelu", pretrained=None))
