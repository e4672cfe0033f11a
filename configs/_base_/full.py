# Full configs: the paper's sizes (Sec. 5.1).
_base_ = ["./runtime.py", "./data_full.py", "./text_bert.py"]
# At full size a clip's frozen ViT-g tokens are ~6 MB and the release has ~18k clips: the on-disk cache of frozen
# features is opt-in (train.cache_frozen=True) and decoded clips are not kept in memory.
train = dict(cache_frozen=False)
data = dict(cache_decoded=False)
