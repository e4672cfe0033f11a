# CLIP+RefCLIP: RefCLIP's settings (config/refcoco.yaml of the release: YOLOv3 DarkNet-53 at 416 px, frozen;
# HIDDEN_SIZE 512; SELECT_NUM 17) + CLIP ViT-B/16 (open_clip). Local weights only: model.pretrained=/path/to/
# detector state dict (keys backbone.* = timm darknet53, anchor_head.pred.*), model.clip.pretrained=/path/to/clip.
_base_ = ["../_base_/full.py"]
model = dict(
    type="clip_refclip",
    backbone=dict(model_name="darknet53"),
    hidden=512,
    select_num=17,
    detector_size=416,
    freeze_detector=True,
    pretrained=None,
    context_length=77,
    # OpenAI's ViT-B-16.pt was trained with QuickGELU (open_clip builds it as "ViT-B-16-quickgelu"); for a LAION
    # open_clip file set model.clip.model_name=ViT-B-16 (plain GELU)
    clip=dict(model_name="ViT-B-16-quickgelu", pretrained=None),
)
