"""What the shared head's candidate mode knows about each person detection of a key frame: its geometry among
the clip's people, its overlap with the true box, and its RoI feature of a method's spatial map."""
from __future__ import annotations

import torch

from ..data.coco import PERSON_ID as PERSON_CAT


def candidate_geometry(dets: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per detection: its box, centre, size and score, plus where it stands among the clip's person
    candidates (left-to-right and by height: normalised rank, first, last; and how many there are).

    Why ranks are given rather than learned: a candidate scored on its own cannot know that it is "the one
    on the left" or "the tall one", which are relations to the other candidates; these few numbers state
    them for every method alike and never look at the sentence or the pixels. Returns ((B, N, 16), person mask).
    """
    boxes, mask = dets["boxes"].float(), dets["mask"].bool()
    person = mask & (dets["cat_ids"] == PERSON_CAT)
    x1, y1, x2, y2 = boxes.unbind(-1)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    n = person.sum(1, keepdim=True).to(boxes.dtype)
    last = (n - 1).clamp_min(1)

    def rank(v):  # how many person candidates lie before this one
        return ((v.unsqueeze(1) < v.unsqueeze(2)) & person.unsqueeze(1)).sum(-1).to(boxes.dtype)

    xr, hr = rank(cx), rank(h)
    g = torch.stack([x1, y1, x2, y2, cx, cy, w, h, dets["scores"].float(), xr / last, (xr == 0).float(),
                     (xr == n - 1).float(), hr / last, (hr == 0).float(), (hr == n - 1).float(),
                     n.expand_as(cx) / 5], dim=-1)
    return g * person.unsqueeze(-1), person


def box_iou_pairs(boxes: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of each of (B, N, 4) boxes with its row's (B, 4) box -> (B, N) (torchvision's box_iou, row-matched)."""
    from torchvision.ops import box_iou

    b, n = boxes.shape[:2]
    iou = box_iou(boxes.reshape(-1, 4), gt).view(b, n, b)
    return torch.diagonal(iou, dim1=0, dim2=2).transpose(0, 1)


def roi_features(fmap: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) map and (B, N, 4) normalised boxes -> (B, N, C): torchvision's RoIAlign, 2x2 bins averaged."""
    from torchvision.ops import roi_align

    b, n = boxes.shape[:2]
    hh, ww = fmap.shape[-2:]
    scale = boxes.new_tensor([ww, hh, ww, hh])
    rois = torch.cat([torch.arange(b, device=boxes.device, dtype=boxes.dtype).repeat_interleave(n)[:, None],
                      (boxes * scale).reshape(-1, 4)], dim=1)
    out = roi_align(fmap, rois.to(fmap.dtype), output_size=2, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    return out.mean(dim=(2, 3)).view(b, n, -1)
