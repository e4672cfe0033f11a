"""The one prediction head and loss every method shares (paper Sec. 3.2 and Eq. 13-14)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .actor_crop import actor_batch

NUM_CLASSES = 80


def _mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, dropout: float, dropout_first: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = in_dim
    for k, h in enumerate(hidden):
        layers.append(nn.Linear(d, h))
        if dropout and (k == 0 or not dropout_first):
            # The released head puts Dropout(0.2) only after its first Linear; keep that shape.
            layers.append(nn.Dropout(dropout))
        layers.append(nn.ReLU())
        d = h
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


PERSON_CAT = 1  # COCO id of "person": only person detections can be the referent


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


class SharedHead(nn.Module):
    """MLP classification (80 logits) + box (normalised x1, y1, x2, y2), the same for every method.

    Defaults are the released code's shapes: cls D-512-256-80 with dropout 0.2 after the first layer,
    box D-512-128-4. ``box_activation="sigmoid"`` keeps boxes inside [0, 1] (the released code has no
    output activation: ``"none"``).

    ``box_mode="regress"`` (the paper's head): the box MLP regresses the box from the pooled feature.
    ``box_mode="candidates"``: the head selects among the key frame's person detections (paper Sec. 3.2's
    SF baselines and RefAtomNet read DETR boxes; here every method does, through the head): each candidate
    is scored from the method's pooled (sentence-conditioned) feature and the candidate's geometry
    (:func:`candidate_geometry`), the MLP-regressed box is one more candidate (for missed people), and the
    box is the softmax-weighted mean of the candidates' boxes, trained by the same MSE plus a cross-entropy
    on which candidate overlaps the true box (``select_weight``); in evaluation the box is the highest-scored
    option's own box. A method that also
    exposes a spatial map (``Method.map_dim``) has each candidate's RoI feature of that map compared with its
    pooled feature too, and the classifier reads the selected region's feature beside the pooled one.
    Why: a box regressed from one pooled vector was not learned in the tiny budget by any family, while
    choosing where the sentence points is (benchmarks/default_levers.md).
    ``actor_pass``: the classifier also reads the feature of :class:`RavarModel`'s actor-centred second pass
    (``actor_size``: the side of that pass's crop in px; None: the clip's size).
    """

    def __init__(self, in_dim: int, cls_hidden=(512, 256), box_hidden=(512, 128), dropout: float = 0.2,
                 box_activation: str = "sigmoid", num_classes: int = NUM_CLASSES, box_mode: str = "regress",
                 map_dim: int = 0, cand_hidden: int = 64, select_weight: float = 1.0, actor_pass: bool = False,
                 actor_size: int | None = None):
        super().__init__()
        if box_activation not in ("sigmoid", "none"):
            raise ValueError(f"head.box_activation must be 'sigmoid' or 'none', got {box_activation!r}")
        if box_mode not in ("regress", "candidates"):
            raise ValueError(f"head.box_mode must be 'regress' or 'candidates', got {box_mode!r}")
        self.box_mode = box_mode
        self.select_weight = float(select_weight)
        self.select_loss = None  # set in training forward (candidate mode); RavarModel hands it to the engine
        self.map_dim = int(map_dim) if box_mode == "candidates" else 0
        self.actor_pass = bool(actor_pass)
        self.actor_size = None if actor_size is None else int(actor_size)  # the crop's side in px (None: the clip's)
        cls_in = in_dim + self.map_dim + (in_dim if self.actor_pass else 0)
        self.cls = _mlp(cls_in, tuple(cls_hidden), num_classes, dropout, dropout_first=True)
        self.box = _mlp(in_dim, tuple(box_hidden), 4, 0.0, dropout_first=True)
        self.box_activation = box_activation
        if box_mode == "candidates":
            # the chooser reads the pooled feature layer-normalised: methods' features differ in scale by
            # orders of magnitude (unit-norm CLIP embeddings beside raw CNN channels)
            self.cand_norm = nn.LayerNorm(in_dim)
            self.cand_q = nn.Linear(in_dim, cand_hidden)
            self.cand_g = nn.Linear(16, cand_hidden, bias=False)
            self.cand_out = nn.Linear(cand_hidden, 1)
            self.fallback = nn.Linear(in_dim, 1)
            if self.map_dim:
                self.region_norm = nn.LayerNorm(self.map_dim)
                self.region_k = nn.Linear(self.map_dim, cand_hidden)
                self.region_q = nn.Linear(in_dim, cand_hidden)

    def forward(self, feats: torch.Tensor, detections: dict | None = None,
                spatial_map: torch.Tensor | None = None, gt_boxes: torch.Tensor | None = None,
                actor_feats: torch.Tensor | None = None):
        boxes, cls_in = self.locate(feats, detections, spatial_map, gt_boxes)
        return self.classify(cls_in, actor_feats), boxes

    def classify(self, cls_in: torch.Tensor, actor_feats: torch.Tensor | None = None) -> torch.Tensor:
        """The 80 logits from what :meth:`locate` passed on, plus (``actor_pass``) the method's feature of the
        actor-centred second pass (RavarModel)."""
        if self.actor_pass:
            if actor_feats is None:
                raise ValueError("the head was built with actor_pass=True: it needs the actor pass's features "
                                 "(RavarModel runs that pass)")
            cls_in = torch.cat([cls_in, actor_feats], dim=-1)
        return self.cls(cls_in)

    def locate(self, feats: torch.Tensor, detections: dict | None = None, spatial_map: torch.Tensor | None = None,
               gt_boxes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(box (B, 4), the classifier's input before the actor feature)."""
        self.select_loss = None
        boxes = self.box(feats)
        if self.box_activation == "sigmoid":
            boxes = boxes.sigmoid()
        if self.box_mode == "regress":
            return boxes, feats
        if detections is None:  # no detections at all (a hand-made batch): the fallback option alone, as
            # for a key frame in which nobody was detected (RavarModel.needs asks the data pipeline for them)
            b = feats.shape[0]
            detections = {"boxes": feats.new_zeros(b, 1, 4), "scores": feats.new_zeros(b, 1),
                          "mask": torch.zeros(b, 1, dtype=torch.bool, device=feats.device),
                          "cat_ids": torch.zeros(b, 1, dtype=torch.long, device=feats.device)}
        geom, person = candidate_geometry(detections)
        cand_boxes = detections["boxes"].to(boxes.dtype)
        q = self.cand_norm(feats)
        scores = self.cand_out(F.relu(self.cand_q(q).unsqueeze(1) + self.cand_g(geom.to(feats.dtype)))).squeeze(-1)
        region = None
        if self.map_dim:
            if spatial_map is None or spatial_map.shape[1] != self.map_dim:
                raise ValueError(f"the head was built for a ({self.map_dim}-channel) spatial map, got "
                                 f"{None if spatial_map is None else tuple(spatial_map.shape)}")
            region = self.region_norm(roi_features(spatial_map, cand_boxes))  # (B, N, C)
            k, rq = self.region_k(region), self.region_q(q)
            scores = scores + torch.einsum("bnc,bc->bn", k, rq) / k.shape[-1] ** 0.5
        scores = scores.masked_fill(~person, float("-inf"))
        logits = torch.cat([self.fallback(q), scores], dim=1)
        weights = logits.softmax(dim=1)  # (B, 1 + N); the fallback is always valid
        if self.training and gt_boxes is not None and self.select_weight:
            # Which candidate to pick, said directly: the person detection that overlaps the true box best
            # (IoU >= 0.5), else the fallback. Through the MSE of the weighted mean alone the choice was
            # learned too slowly in the tiny budget (benchmarks/default_levers.md, experiment e2).
            iou = box_iou_pairs(cand_boxes, gt_boxes.to(cand_boxes.dtype)).masked_fill(~person, -1.0)
            best, idx = iou.max(dim=1)
            target = torch.where(best >= 0.5, idx + 1, torch.zeros_like(idx))
            self.select_loss = self.select_weight * F.cross_entropy(logits, target)
        if not self.training:
            # Scored boxes are the chosen option's own box: a weighted mean of two people is nobody's box, and
            # hedging between them (what the MSE rewards) is never a good IoU. Training keeps the soft mean.
            weights = F.one_hot(logits.argmax(dim=1), logits.shape[1]).to(weights.dtype)
        out_boxes = weights[:, :1] * boxes + torch.einsum("bn,bnk->bk", weights[:, 1:], cand_boxes)
        if region is None:
            return out_boxes, feats
        glob = self.region_norm(spatial_map.mean(dim=(2, 3)))  # what the fallback "selects": the whole frame
        selected = weights[:, :1] * glob + torch.einsum("bn,bnc->bc", weights[:, 1:], region)
        return out_boxes, torch.cat([feats, selected], dim=-1)


def ravar_loss(logits, boxes, labels, gt_boxes, box_weight: float = 5.0, cls_weight: float = 1.0) -> dict:
    """L = cls_weight * BCE (Eq. 13, mean over classes and batch) + box_weight * MSE (Eq. 14).

    Eq. 14 sums the squared error over the 4 coordinates; we average that sum over the batch. The paper
    puts the weight 5 on the MSE term; the released code puts it on BCE (cls_weight=5, box_weight=1).
    """
    bce = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    mse = ((boxes - gt_boxes.to(boxes.dtype)) ** 2).sum(dim=1).mean()
    total = cls_weight * bce + box_weight * mse
    return {"loss": total, "bce": bce.detach(), "mse": mse.detach()}


class RavarModel(nn.Module):
    """A registered method plus the shared head: ``forward(batch) -> {"logits", "boxes"}``.

    With ``head.actor_pass`` the model also holds ``actor``, a second instance of the same method (same
    config, its own weights) that encodes the clip cropped around one person (:mod:`ravar_bench.actor_crop`);
    the classifier reads its feature beside the whole-clip one. Why a second instance rather than the same
    weights twice: sharing them, the whole-clip pass's box and choice losses and the crop's action loss pull
    one small backbone two ways, and the shared backbone learned no actions from the crop (e9 in
    benchmarks/default_levers.md), while the same backbone trained on crops alone did.
    """

    def __init__(self, method: nn.Module, head: SharedHead, actor: nn.Module | None = None):
        super().__init__()
        self.method = method
        self.head = head
        if head.actor_pass and actor is None:
            raise ValueError("head.actor_pass needs the actor instance of the method (build_from_config makes it)")
        self.actor = actor
        for name in getattr(actor, "objective_only", ()):  # the actor pass does not use the method's objective
            actor.get_submodule(name).requires_grad_(False)

    @property
    def needs(self) -> frozenset:
        needs = self.method.needs | ({"detections"} if self.head.box_mode == "candidates" else set())
        # the actor pass reads its fixed sentence's features, where the method reads frozen text features
        reads_frozen_text = bool(needs & {"text_emb", "text_tokens"})
        return frozenset(needs | ({"actor_text"} if self.head.actor_pass and reads_frozen_text else set()))

    def _check(self, feats: torch.Tensor) -> None:
        if feats.dim() != 2 or feats.shape[1] != self.method.feat_dim:
            raise RuntimeError(f"{self.method.method_name} returned features of shape {tuple(feats.shape)}; "
                               f"the contract is (B, {self.method.feat_dim})")

    def forward(self, batch: dict) -> dict:
        self.method.spatial_map = None
        self.method.aux_loss = None  # a method with its own objective sets it in forward
        feats = self.method(batch)
        self._check(feats)
        smap = self.method.spatial_map if self.head.map_dim else None
        boxes, cls_in = self.head.locate(feats, batch.get("detections"), smap, batch.get("box"))
        actor = None
        if self.head.actor_pass:
            # Train on the true person's crop (as two-stage AVA detectors train on ground-truth boxes); evaluate
            # on the crop of the box the method chose, so a wrong choice costs the actions too.
            # The actor instance's own aux_loss (if any) is not used: the method's objective belongs to the
            # whole-clip pass.
            where = batch["box"] if self.training and "box" in batch else boxes
            actor = self.actor(actor_batch(batch, where.detach(), size=self.head.actor_size))
            self._check(actor)
        logits = self.head.classify(cls_in, actor)
        if self.head.select_loss is not None:  # the engine adds the method's aux_loss to the shared loss
            aux = self.method.aux_loss
            self.method.aux_loss = self.head.select_loss if aux is None else aux + self.head.select_loss
        return {"logits": logits, "boxes": boxes}
