# CLIP+DETR: CLIP ViT-B/16 (open_clip) + DETR-R50 (transformers; COCO, 100 queries), as published.
# The DETR key-frame boxes come from the detections cache (tools/precompute_detections.py); set
# model.detector="detr" to run the frozen DETR instead, with model.detr_pretrained=/path/to/detr-resnet-50
# (a local folder holding model.safetensors, or the file). model.clip.pretrained: a local open_clip file.
_base_ = ["../_base_/full.py"]
model = dict(
    type="clip_detr",
    detector="cache",
    max_regions=10,
    score_threshold=0.7,  # DETR's demo threshold for a confident detection
    context_length=77,
    # OpenAI's ViT-B-16.pt was trained with QuickGELU (open_clip builds it as "ViT-B-16-quickgelu"); for a LAION
    # open_clip file set model.clip.model_name=ViT-B-16 (plain GELU)
    clip=dict(model_name="ViT-B-16-quickgelu", pretrained=None),
    detr=dict(num_labels=91, num_queries=100,
              backbone=dict(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
                            layer_type="bottleneck")),
    detr_pretrained=None,
    detr_size=800,  # DETR's shorter-side resolution
)
