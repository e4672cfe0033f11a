"""The actor-centred second pass's input: a batch cropped to a square around one person per clip.

Two-stage atomic-action detectors (the AVA line of work that paper Sec. 3.2's AAL baselines follow) classify a
person from a region around that person, not from the whole frame. At the tiny configs' 64 px a person is
~26 x 8 px of a frame that the backbones reduce to a 2x2 or 4x4 map, so a whole-clip feature cannot hold one
person's pose; the same backbone run on a crop around the person can (benchmarks/default_levers.md, e9).
The crop is made here, on the batch, so that every method gets it alike and no method changes.
"""
from __future__ import annotations

import torch
from torchvision.ops import roi_align

EXPAND = 1.25  # side of the square = the box's longer side x EXPAND: the whole person plus some surroundings
ACTOR_SENTENCE = "the person"  # what the crop's pass reads instead of the reference (see actor_batch)
MIN_SIDE = 0.1  # a degenerate box (a regressed fallback) still gives a crop of at least a tenth of the frame


def square_around(boxes: torch.Tensor, expand: float = EXPAND) -> torch.Tensor:
    """(B, 4) normalised x1y1x2y2 -> (B, 4) squares (in normalised units of each axis) centred on the boxes."""
    x1, y1, x2, y2 = boxes.float().unbind(-1)
    half = ((x2 - x1).abs().maximum((y2 - y1).abs()) * expand).clamp_min(MIN_SIDE) / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return torch.stack([cx - half, cy - half, cx + half, cy + half], dim=-1)


def crop_frames(x: torch.Tensor, squares: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """(B, [T,] C, H, W) pixels -> (B, [T,] C, size, size) (default: H, W), each clip's frames resampled from its
    square (bilinear, torchvision's RoIAlign; outside the frame reads 0, i.e. the normalised mean colour)."""
    b, hw = x.shape[0], x.shape[-2:]
    out_hw = tuple(hw) if size is None else (int(size), int(size))
    frames = x.reshape(-1, *x.shape[-3:])
    per = frames.shape[0] // b
    scale = squares.new_tensor([hw[1], hw[0], hw[1], hw[0]])
    idx = torch.arange(frames.shape[0], device=x.device, dtype=squares.dtype)[:, None]
    rois = torch.cat([idx, (squares * scale).repeat_interleave(per, dim=0)], dim=1)
    out = roi_align(frames, rois.to(frames.dtype), output_size=out_hw, spatial_scale=1.0, sampling_ratio=2,
                    aligned=True)
    return out.view(*x.shape[:-2], *out_hw)


def boxes_into(boxes: torch.Tensor, squares: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised boxes (B, [N,] 4) in frame coordinates -> crop coordinates (clipped to the crop), and whether
    anything of each box is left inside it."""
    sq = squares.to(boxes.dtype)
    if boxes.dim() == 3:
        sq = sq[:, None]
    origin = sq[..., [0, 1, 0, 1]]
    moved = ((boxes - origin) / (sq[..., [2, 3, 2, 3]] - origin)).clamp(0.0, 1.0)
    inside = (moved[..., 2] > moved[..., 0]) & (moved[..., 3] > moved[..., 1])
    return moved, inside


def actor_batch(batch: dict, boxes: torch.Tensor, expand: float = EXPAND, size: int | None = None) -> dict:
    """``batch`` seen through a square around ``boxes`` (B, 4): the clip and key frame cropped and resampled to
    ``size`` px (default: their own sizes; the actor instance is built for it), cropped from ``video_full`` /
    ``keyframe_full`` (the frames as stored) where the batch holds them, detections and the true box moved
    into the crop (detections left outside are masked), and ``clip_key`` naming the crop, so that a frozen-feature
    cache (ravar_bench/encoders/frozen_cache.py) never serves the whole clip's features for it.

    The crop carries one fixed sentence instead of the reference (:data:`ACTOR_SENTENCE`; its frozen-encoder
    features come in ``batch["actor_text"]``, which the engine's text cache adds for a model that needs
    "actor_text"): the person is already chosen, and the reference's position words ("on the left") would point
    inside the crop at the wrong place. Measured: with the reference the second pass learned fewer actions (e9
    in benchmarks/default_levers.md)."""
    squares = square_around(boxes.detach(), expand)
    out = dict(batch)
    out.pop("actor_text", None)
    frozen = [k for k in ("text_emb", "text_tokens") if k in batch]
    if frozen and "actor_text" not in batch:
        raise ValueError(f"the actor pass needs batch['actor_text'] (the frozen text features of {ACTOR_SENTENCE!r}) "
                         f"beside {frozen}; the engine's TextFeatureCache.add_to_batch(batch, model.needs) adds it")
    if "text" in batch:
        out["text"] = [ACTOR_SENTENCE] * len(batch["text"])
    for k, v in batch.get("actor_text", {}).items():
        if k in batch:
            out[k] = v.to(batch[k].device)
    for k in ("video", "keyframe"):
        if k in batch:
            # from the frames as stored when the batch has them (a person is ~65 px tall in a 160 x 120 frame,
            # ~26 px in the 64 px clip), resampled to the size the method's instance is built for
            src = batch.get(f"{k}_full", batch[k])
            out[k] = crop_frames(src, squares.to(src.device), size or batch[k].shape[-1])
    for k in ("video_full", "keyframe_full"):
        out.pop(k, None)
    if "detections" in batch:
        dets = dict(batch["detections"])
        dets["boxes"], inside = boxes_into(dets["boxes"], squares)
        dets["mask"] = dets["mask"] & inside
        out["detections"] = dets
    if "box" in batch:
        out["box"] = boxes_into(batch["box"], squares)[0]
    if "key" in batch:
        out["clip_key"] = [f"{k}@actor:" + ",".join(f"{v:.3f}" for v in sq)
                           for k, sq in zip(batch["key"], squares.tolist())]
    return out
