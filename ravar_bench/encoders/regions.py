"""Key-frame region helpers shared by the single-frame (SF) baselines: CLIP+SAM, CLIP+DETR, CLIP+RefCLIP.

All three follow one recipe: a proposer gives K candidate regions of the key frame (boxes normalised x1y1x2y2
and a validity mask), CLIP encodes each region crop, the regions are scored against the reference sentence,
and a SOFT selection (softmax over the valid regions) pools the region features and boxes, so the choice
trains end to end with the shared head's loss. What is written here by hand is glue no library ships:
box bookkeeping, the masked softmax with its empty-set fallback, and the crop through torchvision's roi_align.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from .pixel_norm import renormalise  # noqa: F401 - the single-frame methods import it from here

FULL_FRAME = (0.0, 0.0, 1.0, 1.0)


def fallback_to_frame(boxes: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows without any valid region get region 0 replaced by the whole frame [0, 0, 1, 1] and marked valid.

    Returns (boxes, mask, empty) where ``empty`` (B,) bool says which rows fell back. The softmax over an
    all-masked row would be NaN; after this every row has at least one valid region.
    """
    empty = ~mask.any(dim=1)
    if empty.any():
        boxes = boxes.clone()
        mask = mask.clone()
        boxes[empty, 0] = torch.tensor(FULL_FRAME, dtype=boxes.dtype, device=boxes.device)
        mask[empty, 0] = True
    return boxes, mask, empty


def sanitise_boxes(boxes: torch.Tensor, min_size: float = 1e-3) -> torch.Tensor:
    """Clamp normalised x1y1x2y2 boxes into the frame and give each at least ``min_size`` width and height."""
    b = boxes.clamp(0.0, 1.0)
    x1 = torch.minimum(b[..., 0], b[..., 2]).clamp(max=1.0 - min_size)
    y1 = torch.minimum(b[..., 1], b[..., 3]).clamp(max=1.0 - min_size)
    x2 = torch.maximum(torch.maximum(b[..., 0], b[..., 2]), x1 + min_size)
    y2 = torch.maximum(torch.maximum(b[..., 1], b[..., 3]), y1 + min_size)
    return torch.stack([x1, y1, x2, y2], dim=-1)


def crop_regions(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crops of ``boxes`` (B, K, 4 normalised x1y1x2y2) from ``images`` (B, 3, H, W) -> (B*K, 3, size, size).

    Bilinear ROI-align (torchvision) so that the crop is differentiable w.r.t. the image. With ``images`` of
    shape (B*K, 3, H, W) (one image per region, e.g. a mask-weighted frame) pass boxes as (B*K, 1, 4).
    """
    n, _, h, w = images.shape
    k = boxes.shape[1]
    scale = torch.tensor([w, h, w, h], dtype=images.dtype, device=images.device)
    # roi_align passes no gradient to the boxes; detaching them also skips its backward when only boxes need grad
    px = sanitise_boxes(boxes.detach()).to(images.dtype) * scale
    idx = torch.arange(n, device=images.device, dtype=images.dtype).repeat_interleave(k).unsqueeze(1)
    rois = torch.cat([idx, px.reshape(-1, 4)], dim=1)
    return roi_align(images, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over the valid entries only; a row with no valid entry gives all zeros (never NaN)."""
    s = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    w = torch.softmax(s, dim=dim) * mask.to(scores.dtype)
    return w / w.sum(dim=dim, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)


def boxes_from_binary_masks(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tight normalised x1y1x2y2 boxes of binary masks (..., H, W) and a validity flag (non-empty mask),
    as SAM's automatic mask generator derives its boxes."""
    h, w = masks.shape[-2:]
    rows, cols = masks.any(dim=-1), masks.any(dim=-2)  # (..., H), (..., W)
    valid = rows.any(dim=-1)
    y1 = rows.int().argmax(dim=-1)
    y2 = h - rows.flip(-1).int().argmax(dim=-1)
    x1 = cols.int().argmax(dim=-1)
    x2 = w - cols.flip(-1).int().argmax(dim=-1)
    boxes = torch.stack([x1 / w, y1 / h, x2 / w, y2 / h], dim=-1).to(torch.float32)
    return boxes * valid.unsqueeze(-1), valid


class ClipRegionSelector(nn.Module):
    """CLIP image features of the whole key frame and of K region crops, matched to a sentence embedding.

    ``forward(keyframe, boxes, mask, text_feat, region_images=None)`` returns a dict with
    ``feat`` (B, 4E + 4) = [frame, selected region, text, region * text, selected box],
    ``scores`` (B, K) region-text logits, ``weights`` (B, K) soft selection, ``box`` (B, 4) and ``empty`` (B,)
    (rows that fell back to the whole frame). ``scores`` are kept on ``self.last_scores`` so a test (or a
    visualisation) can check that the selection receives gradients.
    """

    def __init__(self, clip: nn.Module, max_logit_scale: float = 100.0):
        super().__init__()
        self.clip = clip
        self.size = int(clip.visual.image_size[0])
        self.max_logit_scale = max_logit_scale
        self.last_scores: torch.Tensor | None = None

    def out_dim(self, embed_dim: int) -> int:
        return 4 * embed_dim + 4

    def frame_input(self, keyframe: torch.Tensor) -> torch.Tensor:
        x = keyframe
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def forward(self, keyframe: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor, text_feat: torch.Tensor,
                region_images: torch.Tensor | None = None, scores: torch.Tensor | None = None) -> dict:
        b, k = boxes.shape[:2]
        boxes, mask, empty = fallback_to_frame(boxes, mask)
        if region_images is None:
            crops = crop_regions(keyframe, boxes, self.size)
        else:  # one image per region (e.g. SAM's mask-weighted frames); rows that fell back use the plain frame
            imgs = region_images.view(b, k, *region_images.shape[1:])
            if empty.any():
                imgs = imgs.clone()
                imgs[empty, 0] = keyframe[empty]
            crops = crop_regions(imgs.flatten(0, 1), boxes.reshape(b * k, 1, 4), self.size)
        # one CLIP pass for the frames and the crops (fewer, larger ops: faster on CPU)
        emb = self.clip.encode_image(torch.cat([self.frame_input(keyframe), crops]), normalize=True)
        frame, regions = emb[:b], emb[b:].view(b, k, -1)
        if scores is None:
            scale = self.clip.logit_scale.exp().clamp(max=self.max_logit_scale)
            scores = scale * torch.einsum("bke,be->bk", regions, text_feat)
        self.last_scores = scores
        w = masked_softmax(scores, mask)
        region = torch.einsum("bk,bke->be", w, regions)
        box = torch.einsum("bk,bkc->bc", w, sanitise_boxes(boxes))
        feat = torch.cat([frame, region, text_feat, region * text_feat, box], dim=-1)
        return {"feat": feat, "scores": scores, "weights": w, "box": box, "empty": empty}


def local_weights_file(path: str) -> str:
    """A weights file, or the weights file inside a transformers model folder (model.safetensors / .bin)."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (p / name).is_file():
                return str(p / name)
        raise FileNotFoundError(f"{p} is a folder without model.safetensors or pytorch_model.bin; put the weights "
                                f"file there or point the config at the file itself")
    return str(p)
