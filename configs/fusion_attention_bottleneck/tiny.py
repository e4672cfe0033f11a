# Attention bottlenecks (Nagrani et al., NeurIPS'21) over RefAtomNet's three streams (configs/refatomnet/tiny.py):
# 4 bottleneck tokens, 2 fusion layers (the fewest at which one stream reads what another wrote), 1 head.
_base_ = ["../refatomnet/tiny.py"]
model = dict(_delete_=True, type="fusion_attention_bottleneck", variant={{_base_.model.variant}},
             width={{_base_.model.width}}, blip2={{_base_.model.blip2}}, text_path={{_base_.model.text_path}},
             num_bottlenecks=4, fusion_layers=2, num_heads={{_base_.model.num_heads}}, mlp_ratio={{_base_.model.mlp_ratio}})
