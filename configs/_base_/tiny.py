# Tiny configs: the same code at small widths, trains on 2 CPU cores in seconds per epoch.
_base_ = ["./runtime.py", "./data_tiny.py", "./text_minilm.py"]
train = dict(epochs=4, batch_size=16, lr=1e-3)
head = dict(cls_hidden=(128,), box_hidden=(64,), dropout=0.1)
