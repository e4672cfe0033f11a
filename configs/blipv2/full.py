# BLIP-2 first stage as published (Li et al. ICML'23): frozen EVA ViT-g/14 at 224 px (39 layers, width 1408:
# the last layer removed) + Q-Former (BERT-base, 32 queries, cross-attention every 2nd layer), i.e.
# transformers' Blip2VisionConfig() / Blip2QFormerConfig() defaults. Set model.pretrained to a local folder
# written by Blip2ForImageTextRetrieval.save_pretrained (e.g. of Salesforce/blip2-itm-vit-g); nothing is
# downloaded.
_base_ = ["../_base_/full.py"]
model = dict(type="blipv2", vision=dict(), qformer=dict(), num_query_tokens=32, freeze_vision=True,
             pretrained=None)
