# refatomnet_wo_alsaf (paper Table 3): RefAtomNet's three streams as in configs/refatomnet/full.py, the agent fusion replaced.
# ({{_base_.x}} is mmengine's reference to a value of the base config.)
_base_ = ["../refatomnet/full.py"]
model = dict(_delete_=True, type="refatomnet_wo_alsaf", variant={{_base_.model.variant}}, width={{_base_.model.width}},
             blip2={{_base_.model.blip2}}, text_path={{_base_.model.text_path}})
