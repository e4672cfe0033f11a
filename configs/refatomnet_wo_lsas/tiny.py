# RefAtomNet without LSAS (paper Table 3a); everything else as configs/refatomnet/tiny.py.
_base_ = ["../refatomnet/tiny.py"]
model = dict(type="refatomnet_wo_lsas")
