# Training and evaluation settings shared by every method (paper Sec. 5.1: BertAdam, lr 1e-4, warm-up 0.1).
train = dict(
    epochs=40,
    batch_size=128,
    lr=1e-4,
    warmup_ratio=0.1,  # linear warm-up over this share of all steps, then linear decay (BertAdam's warmup_linear)
    weight_decay=0.01,
    grad_clip=1.0,
    num_workers=0,
    cache_frozen=True,  # frozen parts' outputs (e.g. BLIP-2's frozen ViT) computed once per clip, kept in out/cache/
)
loss = dict(box_weight=5.0, cls_weight=1.0)  # Eq. 13-14; the paper weights the MSE term by 5
head = dict(cls_hidden=(512, 256), box_hidden=(512, 128), dropout=0.2, box_activation="sigmoid")
# n_boot: bootstrap resamples for the 95% intervals; swap_control: the referring-sensitivity control;
# rephrase: test-time rephrasing (the Table 4a suite switches it on)
eval = dict(splits=("val", "test"), average="weighted", iou_gate=None, batch_size=64, n_boot=500,
            swap_control=True, rephrase=False)
