# X-CLIP as cited by the paper (Ma et al., ACM MM'22): CLIP ViT-B/32 towers (OpenAI weights: QuickGELU),
# seqTransf with 4 layers, multi-grained contrasts with AOSM, 32 words. Set model.clip.pretrained to a local
# open_clip/OpenAI ViT-B/32 state-dict file (nothing is downloaded).
# towers="hf_xclip" instead uses transformers' XCLIPModel (Ni et al., ECCV'22; microsoft/xclip-base-patch32's
# architecture, which the `xclip` dict below gives): set model.xclip_pretrained to a local save_pretrained folder.
_base_ = ["../_base_/full.py"]
model = dict(
    type="xclip",
    towers="clip",
    temporal_layers=4,
    context_length=32,
    clip=dict(model_name="ViT-B-32-quickgelu", pretrained=None),
    xclip=dict(projection_dim=512, vision_config=dict(patch_size=32)),  # XCLIPConfig defaults otherwise
    xclip_pretrained=None,
)
