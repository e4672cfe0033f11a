# RefAtomNet as published (paper Sec. 4-5.1): BLIP-2 (EVA ViT-g/14 frozen + Q-Former, 32 queries), BERT-base text
# (frozen, from configs/_base_/text_bert.py), DETR-R50 detections (100), width 768, 4 agents, 1 head, alpha 0.125.
# Set model.blip2.pretrained to a local folder written by transformers' Blip2Model.save_pretrained.
_base_ = ["../_base_/full.py"]
model = dict(
    type="refatomnet",
    variant="paper",
    # Eq. 1: the frozen BERT's tokens -> P_RT -> the trainable Q-Former's text side (shares self-attention with the
    # queries). "projection": P_RT only (the frozen text features every method gets; the README's comparison).
    text_path="qformer",
    width=768,
    num_agents=4,
    num_heads=1,
    alpha=0.125,
    mlp_ratio=4.0,
    # vision / qformer: Blip2VisionConfig / Blip2QFormerConfig defaults = BLIP-2 OPT-2.7b / FlanT5 (ViT-g: 1408 wide,
    # 39 layers, patch 14; Q-Former: 768 wide, 12 layers, cross-attention every 2nd layer).
    blip2=dict(vision=dict(), qformer=dict(), num_query_tokens=32, freeze_vision=True, pretrained=None),
)
