# The released code's choices (docs/reference/refatomnet-released-code.md), an OVERLAY merged over
# configs/refatomnet/tiny.py or full.py by load_config("refatomnet", "full+released") (or released_config("full")):
#   build_from_config(load_config("refatomnet", "full+released"), device="meta")
# On the command line: tools/run_bench.py --methods refatomnet --config-set tiny+released (or full+released), or
# the same as overrides (tests/test_refatomnet.py checks that the two agree):
#   tools/run_bench.py --methods refatomnet --cfg-options model.variant=released model.alpha=None
#     head.box_activation=none head.cls_hidden=[512,256] head.box_hidden=[512,128] head.dropout=0.2
#     loss.box_weight=1.0 loss.cls_weight=5.0
model = dict(
    variant="released",
    alpha=None,  # None = head_dim ** -0.5, i.e. 768 ** -0.5 at the released width with 1 head
)
# The released heads: 768-512-Dropout(0.2)-ReLU-256-ReLU-80 and 768-512-ReLU-128-ReLU-4, no box activation.
head = dict(cls_hidden=(512, 256), box_hidden=(512, 128), dropout=0.2, box_activation="none")
# Loss = MSE(box) + 5 * BCE: the released code weights BCE, the paper weights MSE.
loss = dict(box_weight=1.0, cls_weight=5.0)
# The released location stream is a Linear over DETR's 100 query slots: read a per-query detections cache
# (`ravar-bench detect --detector detr --per-query`: every query, in query order) in its own order. A cache sorted
# by score (HOG, RefAVA-Synth, DETR without --per-query) reads the same either way.
data = dict(detections_order="as_cached")
# Another architecture than the one the shipped pretrained tiny files were made for (configs/refatomnet/tiny.py):
# it starts from random weights, as every method without a shipped file of its own does
init = dict(weights="scratch")
