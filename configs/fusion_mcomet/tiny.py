# McOmet-style fusion (Zong & Sun, AAAI'23) over RefAtomNet's three streams (configs/refatomnet/tiny.py):
# 4 fusion tokens (collection / propagation), pairwise + triplet interactions of the pooled streams.
_base_ = ["../refatomnet/tiny.py"]
model = dict(_delete_=True, type="fusion_mcomet", variant={{_base_.model.variant}}, width={{_base_.model.width}},
             blip2={{_base_.model.blip2}}, text_path={{_base_.model.text_path}}, num_fusion_tokens=4,
             num_heads={{_base_.model.num_heads}}, mlp_ratio={{_base_.model.mlp_ratio}})
