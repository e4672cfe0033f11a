# Full configs: the paper's sizes (Sec. 5.1).
_base_ = ["./runtime.py", "./data_full.py", "./text_bert.py"]
# At full size a clip's frozen ViT-g tokens are ~6 MB and the release has ~18k clips: the on-disk cache of frozen
# features is opt-in (train.cache_frozen=True) and decoded clips are not kept in memory.
# Full size runs on a GPU: decode clips in 8 worker processes (pinned memory and prefetch: configs/_base_/runtime.py).
train = dict(cache_frozen=False, num_workers=8)
data = dict(cache_decoded=False)
