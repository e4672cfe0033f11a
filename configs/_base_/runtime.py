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
    # ravar_bench/engine/precision.py: "auto" = bf16 on a CUDA GPU with bf16 support, fp32 otherwise (CPU);
    # or "fp32" | "bf16" | "fp16" (fp16 adds a GradScaler). Frozen towers are stored in that dtype.
    precision="auto",
    grad_accum=1,  # micro-batches per optimiser step: batch_size=32 + grad_accum=4 = the paper's 128 on one GPU
    activation_checkpointing=False,  # recompute the trainable towers' activations in backward (less memory)
    pin_memory="auto",  # "auto": pinned host memory when CUDA is available
    prefetch_factor=2,  # batches each worker prepares ahead (with num_workers > 0; workers persist across epochs)
    # None, or the decay of an exponential moving average of the trained weights, which are then the ones evaluated
    # and saved (ravar_bench/engine/weight_average.py)
    ema=None,
)
loss = dict(box_weight=5.0, cls_weight=1.0)  # Eq. 13-14; the paper weights the MSE term by 5
head = dict(cls_hidden=(512, 256), box_hidden=(512, 128), dropout=0.2, box_activation="sigmoid")
# n_boot: bootstrap resamples for the 95% intervals; swap_control: the referring-sensitivity control;
# rephrase: test-time rephrasing (the Table 4a suite switches it on); static_control / no_position_control:
# the construct-validity controls of engine/diagnostics.py (test split, data with a factors file only)
# average: the headline protocol (weighted = the authors', or macro); iou_gate: the IoU below which the gated_*
# columns zero an instance's scores (the authors' gated script: 0.5; 0 is a valid gate; None: no gated columns)
eval = dict(splits=("val", "test"), average="weighted", iou_gate=0.5, batch_size=64, n_boot=500,
            swap_control=True, rephrase=False, static_control=True, no_position_control=True)
