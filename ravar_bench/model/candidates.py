"""What the shared head's candidate mode knows about each person detection of a key frame: its geometry among
the clip's people, its overlap with the true box, its RoI feature of a method's spatial map, and (the option
``head.cand_appearance``) its appearance as the method's starting actor instance sees it."""
from __future__ import annotations

import torch
from torch import nn

from ..data.coco import PERSON_ID as PERSON_CAT
from ..encoders.frozen_cache import FrozenFeatureCache
from ..method import FrozenStaysEval
from .actor_crop import actor_batch


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


def take_rows(batch: dict, idx: torch.Tensor, rows: int) -> dict:
    """The batch's items ``idx`` (repeats allowed): every tensor and list with ``rows`` items indexed, dicts (the
    detections, the actor sentence's features) likewise, anything else kept."""
    def cut(v):
        if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == rows:
            return v[idx.to(v.device)]
        if isinstance(v, (list, tuple)) and len(v) == rows:
            return [v[i] for i in idx.tolist()]
        if isinstance(v, dict):
            return {k: cut(x) for k, x in v.items()}
        return v
    return {k: cut(v) for k, v in batch.items()}


class CandidateAppearance(FrozenStaysEval):
    """Each person candidate's feature as the method's actor instance sees it at its starting point: the candidate
    cropped exactly as the actor pass crops the chosen person (:func:`ravar_bench.model.actor_crop.actor_batch`,
    with its one fixed sentence) and encoded by a frozen copy of that instance, taken after its starting weights
    loaded (the shipped pretrained file under ``init.weights="pretrained"``).

    Why: the candidate chooser of a method without a fine spatial map sees only each candidate's geometry, so an
    appearance-only reference ("the person in the red shirt") is chosen at chance; the pretrained actor instance
    reads a person's shirt colour from such a crop (its pretext scores, ``manifest.json``). Frozen, so that its
    features of a (clip, box) never change and are computed once per run (a :class:`FrozenFeatureCache`, which the
    trainer binds to a file), and so that the choice cannot be trained into it. benchmarks/default_levers.md, e14.
    """

    # stays in fp32 under a bf16 policy (engine/precision.py): it is a whole method, whose norm layers CPU autocast
    # does not cast for, and its features are computed once per (clip, box), so storing it in bf16 saves nothing
    keep_fp32 = True

    def __init__(self, encoder: nn.Module, size: int | None):
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.size = size
        self.feature_cache = FrozenFeatureCache()
        # this module caches the copy's outputs: a cache inside the copy would hold them twice
        for m in self.encoder.modules():
            if isinstance(getattr(m, "feature_cache", None), FrozenFeatureCache):
                m.feature_cache.enabled = False

    def train(self, mode: bool = True):
        # eval from the start, not only after the first model.train(): a cached feature must be the one eval gives
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, batch: dict) -> torch.Tensor:
        """(B, N, D): each detection's feature (zeros where it is not a person candidate)."""
        dets = batch["detections"]
        boxes = dets["boxes"].float()
        b, n = boxes.shape[:2]
        person = dets["mask"].bool() & (dets["cat_ids"] == PERSON_CAT)
        bi, ni = person.nonzero(as_tuple=True)
        cand = boxes[bi, ni]
        out = boxes.new_zeros(b, n, self.encoder.feat_dim)
        if not len(bi):
            return out
        clips = batch.get("clip_key")  # a hand-made batch without clip keys: computed, not cached
        keys = None if clips is None else [f"{clips[i]}@cand:" + ",".join(f"{v:.4f}" for v in box)
                                           for i, box in zip(bi.tolist(), cand.tolist())]

        def compute(idx):
            sel = torch.arange(len(bi)) if idx is None else torch.as_tensor(idx)
            sub = take_rows(batch, bi[sel], b)
            with torch.no_grad():
                return self.encoder(actor_batch(sub, cand[sel], size=self.size)).float()

        out[bi, ni] = self.feature_cache.lookup(keys, compute, boxes.device).to(out.dtype)
        return out
