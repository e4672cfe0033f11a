# McOmet-style fusion (Zong & Sun, AAAI'23) over RefAtomNet's three streams (configs/refatomnet/full.py):
# 4 fusion tokens (collection / propagation), pairwise + triplet interactions of the pooled streams.
_base_ = ["../refatomnet/full.py"]
model = dict(_delete_=True, type="fusion_mcomet", variant="paper", width={{_base_.model.width}},
             blip2={{_base_.model.blip2}}, num_fusion_tokens=4, num_heads=1, mlp_ratio=4.0)
