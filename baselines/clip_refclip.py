"""CLIP+RefCLIP (SF family): RefCLIP (Jin et al., CVPR'23), anchor-based weakly supervised referring expression
comprehension, picks the referred person's anchor on the key frame; the selected anchor box's crop is encoded by
CLIP (open_clip) and, with the whole-frame CLIP feature and the sentence, goes to the shared head.

RefCLIP as released (github.com/kingthreestones/RefCLIP, models/RefCLIP/net.py, head.py): a frozen YOLOv3
(DarkNet-53) gives per-grid-cell anchors (3 per cell, box + objectness) on its stride-32 map; the SELECT_NUM=17
cells with the highest mean objectness are kept; each kept cell's feature (after a multi-scale fusion neck)
and the sentence feature are projected (linear_vs / linear_ts, 512-d) and scored by their dot product; the
prediction is the best-scoring cell, and its box is the cell's anchor with the highest objectness. Training
is anchor-text contrastive: for each sentence the best anchor of its own image against the best (and the
second-best: "negative anchor augmentation") anchors of the other images in the batch.

No library ships RefCLIP, so the small anchor head is written here, on a timm backbone (DarkNet-53 in the
full config, as RefCLIP's YOLOv3). Departures, all for the RAVAR setting:
- the sentence goes through CLIP's text tower (RefCLIP: GloVe + LSTM) so that one tokenizer serves the method;
- the selection is SOFT (softmax over the kept cells of the dot products / sqrt(d)), so the shared head's loss
  trains the scorer end to end; the hard arg-max is kept as ``self.last_pick`` for inspection;
- the neck is one 3x3 conv block on the stride-32 map instead of RefCLIP's three-level fusion;
- RefCLIP's contrastive loss is computed every training step and left on ``self.aux_loss`` (times
  ``aux_weight``); the shared engine adds only the RAVAR loss, so it is reported, not yet optimised.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ravar_bench.encoders.checkpoint import load_into
from ravar_bench.encoders.clip import ClipTokenizer, build_clip, clip_pair
from ravar_bench.encoders.pixel_norm import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from ravar_bench.encoders.regions import ClipRegionSelector, renormalise
from ravar_bench.method import Method
from ravar_bench.registry import register_method

# YOLOv3's three stride-32 anchors (116x90, 156x198, 373x326 px on a 416 px input), as fractions of the image
YOLO_ANCHORS_S32 = ((116 / 416, 90 / 416), (156 / 416, 198 / 416), (373 / 416, 326 / 416))


def refclip_contrastive(vis: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
    """RefCLIP's anchor-text contrastive loss (head.py getContrast). vis (B, K, D) kept-anchor embeddings,
    txt (B, D) sentence embeddings. Logits for sentence b: the best anchor of every image a (positive: a = b),
    then the second-best anchors of the other images (negative anchor augmentation)."""
    b = vis.shape[0]
    sim = torch.einsum("akd,bd->bak", vis, txt)  # (texts, images, anchors)
    top = sim.topk(k=min(2, sim.shape[-1]), dim=-1).values
    logits = [top[..., 0]]
    if top.shape[-1] > 1 and b > 1:
        off = ~torch.eye(b, dtype=torch.bool, device=vis.device)
        logits.append(top[..., 1].masked_select(off).view(b, b - 1))
    return F.cross_entropy(torch.cat(logits, dim=1), torch.arange(b, device=vis.device))


class AnchorHead(nn.Module):
    """YOLO-style single-scale anchor head: per cell and anchor (tx, ty, tw, th, objectness), plus the cell feature
    that RefCLIP scores against the text. Written by hand: no library ships a YOLOv3 head for timm backbones."""

    def __init__(self, in_ch: int, hidden: int, anchors=YOLO_ANCHORS_S32):
        super().__init__()
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32), persistent=False)
        self.na = len(anchors)
        self.pred = nn.Conv2d(in_ch, self.na * 5, 1)  # YOLOv3's box + objectness (class logits unused)
        self.neck = nn.Sequential(nn.Conv2d(in_ch, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden),
                                  nn.LeakyReLU(0.1))

    def boxes(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded anchors: boxes (B, HW, A, 4) normalised x1y1x2y2 and objectness logits (B, HW, A)."""
        b, _, h, w = fmap.shape
        p = self.pred(fmap).view(b, self.na, 5, h, w).permute(0, 3, 4, 1, 2).reshape(b, h * w, self.na, 5)
        gy, gx = torch.meshgrid(torch.arange(h, device=fmap.device), torch.arange(w, device=fmap.device),
                                indexing="ij")
        grid = torch.stack([gx, gy], dim=-1).reshape(1, h * w, 1, 2).to(p.dtype)
        size = torch.tensor([w, h], dtype=p.dtype, device=p.device)
        cxy = (p[..., :2].sigmoid() + grid) / size
        wh = self.anchors.to(p.dtype) * p[..., 2:4].clamp(max=4.0).exp()
        return torch.cat([cxy - wh / 2, cxy + wh / 2], dim=-1).clamp(0, 1), p[..., 4]

    def forward(self, fmap):
        boxes, obj = self.boxes(fmap)
        feats = self.neck(fmap).flatten(2).transpose(1, 2)  # (B, HW, hidden)
        return boxes, obj, feats


# What a detector file leaves at its initialisation on purpose: CLIP (its own model.clip.pretrained) and the parts
# the RAVAR training learns. A whole saved clip_refclip method sets them too.
_NOT_DETECTOR = ("selector.", "anchor_head.neck.", "linear_vs.", "linear_ts.")


@register_method("clip_refclip", family="SF", paper_name="CLIP+REFCLIP")
class CLIPRefCLIP(Method):
    needs = frozenset({"keyframe", "text"})
    tower_freeze_keys = ("freeze_detector",)
    # the anchor features and the score projections: the scores pick the region by argmax, so only the anchor
    # contrast (aux_loss) trains them
    objective_only = ("anchor_head.neck", "linear_vs", "linear_ts")

    def __init__(self, keyframe_size: int, clip: dict, backbone: dict, hidden: int = 512, select_num: int = 17,
                 detector_size: int | None = None, freeze_detector: bool = True, pretrained: str | None = None,
                 aux_weight: float = 1.0, context_length: int = 32, pixel_mean=CLIP_MEAN, pixel_std=CLIP_STD):
        super().__init__()
        import timm

        bb = dict(backbone)
        name = bb.pop("model_name")
        self.backbone = timm.create_model(name, pretrained=False, features_only=True, out_indices=(-1,), **bb)
        ch = self.backbone.feature_info.channels()[-1]
        self.anchor_head = AnchorHead(ch, hidden)
        self.selector = ClipRegionSelector(build_clip(**clip))
        # the anchor head's scores pick the region (forward passes them), so CLIP's temperature is never read
        self.selector.clip.logit_scale.requires_grad_(False)
        self.tokenizer = ClipTokenizer(context_length)
        e = int(self.selector.clip.text_projection.shape[1])
        self.linear_vs = nn.Linear(hidden, hidden)
        self.linear_ts = nn.Linear(e, hidden)
        self.keyframe_size = keyframe_size
        self.detector_size = detector_size or keyframe_size
        self.select_num, self.hidden, self.aux_weight = select_num, hidden, aux_weight
        self.pixel_mean, self.pixel_std = tuple(pixel_mean), tuple(pixel_std)
        self.no_detection_count = 0  # anchors always exist; kept for the engine's uniform log
        self.aux_loss: torch.Tensor | None = None
        self.last_pick: torch.Tensor | None = None
        self.feat_dim = self.selector.out_dim(e)
        if pretrained:  # the detector (backbone.*, anchor_head.pred.*), or a whole saved clip_refclip method
            load_into(self, pretrained, strip_prefixes=("module.",), what="RefCLIP checkpoint", replaced=_NOT_DETECTOR,
                      expect="a state dict with backbone.* (timm darknet53) and anchor_head.pred.*: no file of "
                             "RefCLIP's official release has these names (docs/model_zoo.md)")
        self.freeze_detector = freeze_detector
        if freeze_detector:  # RefCLIP's VIS_FREEZE: the YOLOv3 detector (backbone + box head) is frozen
            self.backbone.requires_grad_(False)
            self.anchor_head.pred.requires_grad_(False)

    def forward(self, batch):
        kf = batch["keyframe"]
        self.check_video(kf, 0, self.keyframe_size, key="keyframe")
        x = renormalise(kf, self.pixel_mean, self.pixel_std, IMAGENET_MEAN, IMAGENET_STD)
        if self.detector_size != kf.shape[-1]:
            x = F.interpolate(x, size=(self.detector_size, self.detector_size), mode="bilinear", align_corners=False)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_detector):
            fmap = self.backbone(x)[-1]
        boxes, obj, cells = self.anchor_head(fmap)
        # RefCLIP's anchor selection: the cells with the highest mean objectness over their anchors
        k = min(self.select_num, cells.shape[1])
        keep = obj.mean(-1).topk(k, dim=1).indices  # (B, K)
        cells = cells.gather(1, keep.unsqueeze(-1).expand(-1, -1, cells.shape[-1]))
        cell_boxes = boxes.gather(1, keep[..., None, None].expand(-1, -1, *boxes.shape[2:]))
        cell_obj = obj.gather(1, keep.unsqueeze(-1).expand(-1, -1, obj.shape[-1]))
        best = cell_obj.argmax(-1)  # each cell's box: its anchor with the highest objectness
        cell_boxes = cell_boxes.gather(2, best[..., None, None].expand(-1, -1, 1, 4)).squeeze(2)

        ids = self.tokenizer(batch["text"]).to(kf.device)
        txt = self.selector.clip.encode_text(ids, normalize=True)
        vis = self.linear_vs(cells)
        lan = self.linear_ts(txt)
        scores = torch.einsum("bkd,bd->bk", vis, lan) / self.hidden ** 0.5
        self.aux_loss = (self.aux_weight * refclip_contrastive(vis, lan)
                         if self.training and torch.is_grad_enabled() else None)
        self.last_pick = scores.argmax(-1).detach()
        valid = torch.ones_like(scores, dtype=torch.bool)
        out = self.selector(kf, cell_boxes, valid, txt, scores=scores)
        return out["feat"]

    def contrastive_pair(self, batch):
        return clip_pair(self.selector.clip, self.tokenizer, batch["keyframe"], batch["text"])
