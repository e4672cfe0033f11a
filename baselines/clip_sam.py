"""CLIP+SAM (SF family): SAM (Kirillov et al., ICCV'23; transformers ``SamModel``) proposes masks on the key frame
from a fixed grid of point prompts (as SAM's automatic mask generator does); each mask's region (the frame
with the background outside the mask set to the mean colour, cropped to the mask's box) is encoded by CLIP
(open_clip) and matched to the reference through CLIP's text tower; the SOFT-selected region (softmax over
region-text similarities, so the choice trains end to end) plus the whole-frame CLIP feature go to the head.

SAM is the frozen proposer (eval mode, no gradients): per grid point it keeps the best of its 3 multimask
outputs by SAM's own predicted IoU, and the ``max_regions`` points with the highest predicted IoU go on to
CLIP (standing in for the generator's IoU filtering + NMS). A key frame where every kept mask is empty falls
back to the whole frame and is counted in ``self.no_detection_count``.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from ravar_bench.encoders.checkpoint import load_into
from ravar_bench.encoders.clip import ClipTokenizer, build_clip, clip_pair
from ravar_bench.encoders.pixel_norm import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from ravar_bench.encoders.regions import ClipRegionSelector, boxes_from_binary_masks, local_weights_file, renormalise
from ravar_bench.method import Method
from ravar_bench.registry import register_method

# Meta's SAM file (facebookresearch/segment-anything, sam_vit_b_01ec64.pth: Sam's own state dict) -> transformers'
# SamModel names; written from the two module trees (segment_anything/modeling/*.py, transformers' modeling_sam.py),
# as transformers' convert_sam_to_hf.py maps them. (pattern on the whole key, replacement), first match wins.
_META_SAM = [
    (r"image_encoder\.patch_embed\.proj\.", "vision_encoder.patch_embed.projection."),
    (r"image_encoder\.blocks\.(\d+)\.norm(\d)\.", r"vision_encoder.layers.\1.layer_norm\2."),
    (r"image_encoder\.blocks\.", "vision_encoder.layers."),
    (r"image_encoder\.neck\.0\.", "vision_encoder.neck.conv1."),
    (r"image_encoder\.neck\.1\.", "vision_encoder.neck.layer_norm1."),
    (r"image_encoder\.neck\.2\.", "vision_encoder.neck.conv2."),
    (r"image_encoder\.neck\.3\.", "vision_encoder.neck.layer_norm2."),
    (r"image_encoder\.", "vision_encoder."),
    (r"prompt_encoder\.point_embeddings\.", "prompt_encoder.point_embed."),
    (r"prompt_encoder\.mask_downscaling\.0\.", "prompt_encoder.mask_embed.conv1."),
    (r"prompt_encoder\.mask_downscaling\.1\.", "prompt_encoder.mask_embed.layer_norm1."),
    (r"prompt_encoder\.mask_downscaling\.3\.", "prompt_encoder.mask_embed.conv2."),
    (r"prompt_encoder\.mask_downscaling\.4\.", "prompt_encoder.mask_embed.layer_norm2."),
    (r"prompt_encoder\.mask_downscaling\.6\.", "prompt_encoder.mask_embed.conv3."),
    (r"mask_decoder\.transformer\.layers\.(\d+)\.norm(\d)\.", r"mask_decoder.transformer.layers.\1.layer_norm\2."),
    (r"mask_decoder\.transformer\.norm_final_attn\.", "mask_decoder.transformer.layer_norm_final_attn."),
    (r"mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
    # SAM's 3-layer MLPs (hypernetworks, IoU head): layers.0 / 1 / 2 -> proj_in / layers.0 / proj_out
    (r"(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.0\.", r"\1.proj_in."),
    (r"(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.1\.", r"\1.layers.0."),
    (r"(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.2\.", r"\1.proj_out."),
]
_META_SAM = [(re.compile(p), r) for p, r in _META_SAM]


def meta_sam_key(key: str) -> str | tuple[str, str] | None:
    """A key of Meta's SAM file -> its name(s) in transformers' SamModel (None: not a weight). The random-Fourier
    positional table is one tensor in Meta's prompt encoder and two names in SamModel (the image-side
    ``shared_image_embedding`` and the prompt encoder's reference to it)."""
    if key in ("pixel_mean", "pixel_std"):  # normalisation constants (the suite renormalises to them itself)
        return None
    if key == "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix":
        return "shared_image_embedding.positional_embedding", "prompt_encoder.shared_embedding.positional_embedding"
    for pattern, repl in _META_SAM:
        if pattern.match(key):
            return pattern.sub(repl, key, count=1)
    return key


def _is_meta_sam(keys) -> bool:
    return any(k.startswith("image_encoder.") for k in keys)


def build_sam(sam: dict | None = None, pretrained: str | None = None) -> nn.Module:
    """transformers ``SamModel`` from config dicts (``vision``, ``prompt``, ``decoder``); defaults = SAM ViT-B."""
    from transformers import SamConfig, SamMaskDecoderConfig, SamModel, SamPromptEncoderConfig, SamVisionConfig

    sam = sam or {}
    cfg = SamConfig(vision_config=SamVisionConfig(**sam.get("vision", {})).to_dict(),
                    prompt_encoder_config=SamPromptEncoderConfig(**sam.get("prompt", {})).to_dict(),
                    mask_decoder_config=SamMaskDecoderConfig(**sam.get("decoder", {})).to_dict())
    model = SamModel(cfg)
    if pretrained:
        load_into(model, local_weights_file(pretrained), strip_prefixes=("module.",), what="SAM checkpoint",
                  key_map=meta_sam_key, key_map_when=_is_meta_sam,
                  expect="Meta's SAM file (sam_vit_b_01ec64.pth) or a transformers SamModel folder (e.g. "
                         "sam-vit-base) of this size")
    return model


def grid_points(points_per_side: int) -> torch.Tensor:
    """(n*n, 2) normalised x, y cell centres: SAM's automatic-generator point grid."""
    c = (torch.arange(points_per_side, dtype=torch.float32) + 0.5) / points_per_side
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=-1)


@register_method("clip_sam", family="SF", paper_name="CLIP+SAM")
class CLIPSAM(Method):
    needs = frozenset({"keyframe", "text"})

    def __init__(self, keyframe_size: int, clip: dict, sam: dict | None = None, sam_pretrained: str | None = None,
                 points_per_side: int = 3, max_regions: int = 4, mask_threshold: float = 0.0,
                 context_length: int = 32, pixel_mean=CLIP_MEAN, pixel_std=CLIP_STD):
        super().__init__()
        self.sam = build_sam(sam, sam_pretrained)
        self.sam.requires_grad_(False)
        self.sam.eval()
        self.sam_size = int(self.sam.config.vision_config.image_size)
        self.register_buffer("points", grid_points(points_per_side), persistent=False)
        if max_regions > points_per_side ** 2:
            raise ValueError(f"clip_sam: max_regions={max_regions} exceeds the {points_per_side ** 2} grid prompts")
        self.selector = ClipRegionSelector(build_clip(**clip))
        self.tokenizer = ClipTokenizer(context_length)
        e = int(self.selector.clip.text_projection.shape[1])
        self.keyframe_size, self.max_regions, self.mask_threshold = keyframe_size, max_regions, mask_threshold
        self.pixel_mean, self.pixel_std = tuple(pixel_mean), tuple(pixel_std)
        self.no_detection_count = 0
        self.feat_dim = self.selector.out_dim(e)

    @torch.no_grad()
    def propose(self, keyframe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SAM on the point grid -> masks (B, K, H, W) bool at key-frame size, boxes (B, K, 4), valid (B, K)."""
        b, _, h, w = keyframe.shape
        x = renormalise(keyframe, self.pixel_mean, self.pixel_std, IMAGENET_MEAN, IMAGENET_STD)
        if x.shape[-1] != self.sam_size or x.shape[-2] != self.sam_size:
            x = F.interpolate(x, size=(self.sam_size, self.sam_size), mode="bilinear", align_corners=False)
        n = self.points.shape[0]
        pts = (self.points * self.sam_size).to(x.dtype).view(1, n, 1, 2).expand(b, n, 1, 2)
        labels = torch.ones(b, n, 1, dtype=torch.long, device=x.device)
        out = self.sam(pixel_values=x, input_points=pts, input_labels=labels, multimask_output=True)
        iou, best = out.iou_scores.max(dim=-1)  # (B, n): the best of the 3 multimask outputs per point
        masks = out.pred_masks.gather(2, best[..., None, None, None].expand(-1, -1, 1, *out.pred_masks.shape[-2:]))
        top = iou.topk(self.max_regions, dim=1).indices  # (B, K)
        masks = masks[:, :, 0].gather(1, top[..., None, None].expand(-1, -1, *masks.shape[-2:]))
        masks = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False) > self.mask_threshold
        boxes, valid = boxes_from_binary_masks(masks)
        return masks, boxes.to(keyframe.dtype), valid

    def forward(self, batch):
        kf = batch["keyframe"]
        self.check_video(kf, 0, self.keyframe_size, key="keyframe")
        masks, boxes, valid = self.propose(kf)
        b, k = boxes.shape[:2]
        # the region image: inside the mask the frame, outside 0 = the mean colour of the normalised input
        region_images = (kf.unsqueeze(1) * masks.unsqueeze(2).to(kf.dtype)).flatten(0, 1)
        ids = self.tokenizer(batch["text"]).to(kf.device)
        txt = self.selector.clip.encode_text(ids, normalize=True)
        out = self.selector(kf, boxes, valid, txt, region_images=region_images)
        self.no_detection_count += int(out["empty"].sum())
        return out["feat"]

    def contrastive_pair(self, batch):
        return clip_pair(self.selector.clip, self.tokenizer, batch["keyframe"], batch["text"])
