# Singularity as released for video QA (jayleicn/singularity configs/qa_anet.yaml): BEiT-base/16 vision
# encoder (microsoft/beit-base-patch16-224-pt22k-ft22k's architecture: relative position bias, layer scale 0.1),
# BERT-base with cross-attention in its last 3 layers (fusion_layer=9), single-frame training, early-fusion
# ("concat") frame ensemble at test time. Weights only from local folders: model.vision_pretrained=<BEiT
# save_pretrained folder>, model.text_pretrained=<bert-base-uncased folder>, or model.pretrained=<a state
# dict of this module>.
_base_ = ["../_base_/full.py"]
model = dict(
    type="singularity",
    vision_type="beit",
    vision=dict(patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072, use_relative_position_bias=True, layer_scale_init_value=0.1),
    text=dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
              intermediate_size=3072),
    fusion_layers=3,
    eval_frame_ensemble="concat",
    vision_pretrained=None,
    text_pretrained=None,
    pretrained=None,
    # BEiT's statistics, as Singularity's dataset/__init__.py normalises for vit_type "beit" (mean 0.5, std 0.5):
    # the frames (decoded in data.mean / data.std) are renormalised to them
    backbone_mean=(0.5, 0.5, 0.5),
    backbone_std=(0.5, 0.5, 0.5),
)
