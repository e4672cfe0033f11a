# RefAtomNet without LSAS (paper Table 3a); everything else as configs/refatomnet/full.py.
_base_ = ["../refatomnet/full.py"]
model = dict(type="refatomnet_wo_lsas")
