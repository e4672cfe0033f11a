"""CLIP+DETR (SF family): DETR (Carion et al., ECCV'20) person boxes on the key frame, each box's crop encoded
by CLIP (Radford et al., ICML'21), the boxes matched to the reference sentence through CLIP's text tower, and
the soft-selected region (softmax over region-text similarities, so the choice trains end to end) together
with the whole-frame CLIP feature goes to the shared head.

The detector is frozen. By default (``detector="cache"``) its key-frame output is read from the detections
cache (``batch["detections"]``: made once by tools/precompute_detections.py), so it is not re-run every epoch;
``detector="detr"`` runs the frozen transformers ``DetrForObjectDetection`` on the key frame instead (no cache
needed; ``detr_pretrained`` then names a local weights file or model folder).

A key frame with no usable box (no detection, or none of the person class) falls back to the whole frame
and is counted in ``self.no_detection_count`` (the engine logs it).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ravar_bench.encoders.checkpoint import load_into, read_state_dict
from ravar_bench.encoders.clip import ClipTokenizer, build_clip, clip_pair
from ravar_bench.encoders.pixel_norm import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from ravar_bench.encoders.regions import ClipRegionSelector, local_weights_file, renormalise
from ravar_bench.method import Method
from ravar_bench.registry import register_method

PERSON = 1  # COCO category id of "person" (also DETR's COCO label index)


# transformers 4.x names (the published folders' main revision) -> the names of the installed transformers 5 DETR;
# the same renames transformers' own loader applies (its conversion_mapping for DetrModel). Names already new pass.
_DETR_RENAMES = ((r"backbone\.conv_encoder\.", "backbone."), (r"\.out_proj\.", ".o_proj."),
                 (r"layers\.(\d+)\.fc([12])\.", r"layers.\1.mlp.fc\2."))


def detr_key(key: str) -> str:
    for old, new in _DETR_RENAMES:
        key = re.sub(old, new, key)
    return key


def detr_backbone_of(pretrained: str) -> str | None:
    """The timm backbone name the DETR weights were made with (facebook/detr-resnet-50's main revision: 'resnet50'),
    or None for transformers' own ResNet. Read from the folder's config.json, else from the file's key names."""
    p = Path(pretrained).expanduser()
    if (p / "config.json").is_file():
        c = json.loads((p / "config.json").read_text())
        bc = c.get("backbone_config") or {}
        if bc.get("model_type") == "timm_backbone":
            return bc.get("backbone") or "resnet50"
        if bc or c.get("use_timm_backbone") is False:
            return None
        return c.get("backbone") or "resnet50"  # DetrConfig's default is the timm backbone
    keys = read_state_dict(local_weights_file(pretrained), what="DETR checkpoint")
    return "resnet50" if any(".conv_encoder.model.conv1." in k or "backbone.model.conv1." in k for k in keys) else None


def build_detr(detr: dict, pretrained: str | None = None) -> nn.Module:
    """transformers DETR from a config dict. With weights, the backbone their folder's config asks for (the timm
    ResNet of facebook/detr-resnet-50, or transformers' own); never timm/hub weights (use_pretrained_backbone off)."""
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    cfg = dict(detr)
    backbone = cfg.pop("backbone", {})
    timm_name = detr_backbone_of(pretrained) if pretrained else None
    if timm_name:  # the layout of the published file: its own backbone; nothing fetched for it
        config = DetrConfig(use_timm_backbone=True, backbone=timm_name, use_pretrained_backbone=False, **cfg)
    else:
        config = DetrConfig(use_timm_backbone=False, use_pretrained_backbone=False,
                            backbone_config=ResNetConfig(**backbone), **cfg)
    model = DetrForObjectDetection(config)
    if pretrained:
        load_into(model, local_weights_file(pretrained), strip_prefixes=("module.",), what="DETR checkpoint",
                  key_map=detr_key, expect="a transformers DETR folder (facebook/detr-resnet-50: config.json + "
                                           "model.safetensors) with this config's num_queries / num_labels")
    return model


@register_method("clip_detr", family="SF", paper_name="CLIP+DETR")
class CLIPDETR(Method):
    needs = frozenset({"keyframe", "text", "detections"})

    def __init__(self, keyframe_size: int, num_dets: int, clip: dict, context_length: int = 32,
                 max_regions: int = 8, person_only: bool = True, detector: str = "cache",
                 detr: dict | None = None, detr_pretrained: str | None = None, detr_size: int | None = None,
                 score_threshold: float = 0.7, pixel_mean=CLIP_MEAN, pixel_std=CLIP_STD):
        super().__init__()
        if detector not in ("cache", "detr"):
            raise ValueError(f"clip_detr: detector must be 'cache' (read batch['detections']) or 'detr' "
                             f"(run the frozen DETR), got {detector!r}")
        self.detector = detector
        if detector == "detr":
            # an instance attribute shadows the class one: without the cache the data pipeline skips detections
            self.needs = frozenset({"keyframe", "text"})
            self.detr = build_detr(detr or {}, detr_pretrained)
            self.detr.requires_grad_(False)
            self.detr.eval()
            self.detr_size = detr_size or keyframe_size
        elif detr_pretrained:
            raise ValueError("clip_detr: detr_pretrained is set but detector='cache' never runs DETR; "
                             "set detector='detr' or drop detr_pretrained")
        self.selector = ClipRegionSelector(build_clip(**clip))
        self.tokenizer = ClipTokenizer(context_length)
        e = int(self.selector.clip.text_projection.shape[1])
        self.keyframe_size, self.num_dets = keyframe_size, num_dets
        self.max_regions, self.person_only, self.score_threshold = max_regions, person_only, score_threshold
        self.pixel_mean, self.pixel_std = tuple(pixel_mean), tuple(pixel_std)
        self.no_detection_count = 0
        self.feat_dim = self.selector.out_dim(e)

    @torch.no_grad()
    def run_detr(self, keyframe: torch.Tensor) -> dict:
        """Frozen DETR on the key frame -> the same dict as the detections cache (top ``num_dets`` by score)."""
        x = renormalise(keyframe, self.pixel_mean, self.pixel_std, IMAGENET_MEAN, IMAGENET_STD)
        if x.shape[-1] != self.detr_size:
            x = F.interpolate(x, size=(self.detr_size, self.detr_size), mode="bilinear", align_corners=False)
        out = self.detr(pixel_values=x)
        prob = out.logits.softmax(-1)[..., :-1]  # the last class is DETR's "no object"
        scores, cats = prob.max(-1)
        cxcy, wh = out.pred_boxes[..., :2], out.pred_boxes[..., 2:]
        boxes = torch.cat([cxcy - wh / 2, cxcy + wh / 2], dim=-1).clamp(0, 1)
        n = min(self.num_dets, scores.shape[1])
        top = scores.topk(n, dim=1).indices
        take = lambda t: t.gather(1, top if t.dim() == 2 else top.unsqueeze(-1).expand(-1, -1, t.shape[-1]))
        scores, cats, boxes = take(scores), take(cats), take(boxes)
        return {"boxes": boxes, "scores": scores, "cat_ids": cats, "mask": scores >= self.score_threshold}

    def candidates(self, dets: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``max_regions`` best-scoring usable boxes (persons unless ``person_only=False``) and their mask."""
        mask = dets["mask"].bool()
        if self.person_only:
            mask = mask & (dets["cat_ids"] == PERSON)
        score = dets["scores"].float().masked_fill(~mask, -1.0)
        k = min(self.max_regions, score.shape[1])
        top = score.topk(k, dim=1).indices
        boxes = dets["boxes"].float().gather(1, top.unsqueeze(-1).expand(-1, -1, 4))
        return boxes, mask.gather(1, top)

    def forward(self, batch):
        kf = batch["keyframe"]
        self.check_video(kf, 0, self.keyframe_size, key="keyframe")
        dets = self.run_detr(kf) if self.detector == "detr" else batch["detections"]
        boxes, mask = self.candidates(dets)
        ids = self.tokenizer(batch["text"]).to(kf.device)
        txt = self.selector.clip.encode_text(ids, normalize=True)
        out = self.selector(kf, boxes.to(kf.dtype), mask, txt)
        self.no_detection_count += int(out["empty"].sum())
        return out["feat"]

    def contrastive_pair(self, batch):
        return clip_pair(self.selector.clip, self.tokenizer, batch["keyframe"], batch["text"])
