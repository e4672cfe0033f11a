# Attention bottlenecks (Nagrani et al., NeurIPS'21) over RefAtomNet's three streams (configs/refatomnet/full.py):
# 4 bottleneck tokens (MBT's default), one fusion layer per stream (RefAtomNet's depth), 1 head as RefAtomNet.
_base_ = ["../refatomnet/full.py"]
model = dict(_delete_=True, type="fusion_attention_bottleneck", variant="paper", width={{_base_.model.width}},
             blip2={{_base_.model.blip2}}, num_bottlenecks=4, fusion_layers=1, num_heads=1, mlp_ratio=4.0)
