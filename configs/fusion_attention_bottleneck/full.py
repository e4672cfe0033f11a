# Attention bottlenecks (Nagrani et al., NeurIPS'21) over RefAtomNet's three streams (configs/refatomnet/full.py):
# 4 bottleneck tokens and 4 fusion layers (MBT's defaults: it fuses in the last 4 of 12 layers), 1 head as RefAtomNet.
_base_ = ["../refatomnet/full.py"]
model = dict(_delete_=True, type="fusion_attention_bottleneck", variant={{_base_.model.variant}},
             width={{_base_.model.width}}, blip2={{_base_.model.blip2}}, text_path={{_base_.model.text_path}},
             num_bottlenecks=4, fusion_layers=4, num_heads={{_base_.model.num_heads}}, mlp_ratio={{_base_.model.mlp_ratio}})
