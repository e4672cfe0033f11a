"""The one prediction head and loss every method shares (paper Sec. 3.2 and Eq. 13-14)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .candidates import box_iou_pairs, candidate_geometry, roi_features

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
    (``actor_size``: the side of that pass's crop in px; None: the clip's size; ``actor_source="stored"``: cropped
    from the frames at the resolution they are stored in, ``"clip"``: from the clip the whole-clip pass reads).
    ``actor_norm``: that feature is layer-normalised before the classifier reads it (a pretrained instance's feature
    can be orders of magnitude larger than the whole-clip one: I3D's, norm ~750 against 34, left every hidden unit of
    the classifier dead; benchmarks/default_levers.md, e13).
    ``cand_appearance``: the candidate chooser also reads each person candidate's appearance feature
    (:class:`ravar_bench.model.candidates.CandidateAppearance`: the starting actor instance, frozen, on the
    candidate's crop; needs ``actor_pass`` and candidate mode), scored against the pooled feature as region features
    are (benchmarks/default_levers.md, e14).

    Args:
        in_dim: the method's pooled feature size (``Method.feat_dim``).
        cls_hidden, box_hidden: hidden widths of the classifier and the box MLP.
        dropout: after the classifier's first layer.
        box_activation: ``"sigmoid"`` or ``"none"``.
        num_classes: 80 (AVA).
        box_mode: ``"regress"`` or ``"candidates"``.
        map_dim: channels of the method's spatial map (candidate mode; 0: none).
        cand_hidden: width of the candidate scorer.
        select_weight: weight of the candidate-selection cross-entropy.
        actor_pass, actor_size, actor_source, actor_norm: the actor-centred second pass (above).
        cand_appearance: the chooser reads each candidate's appearance (above).

    ``forward`` returns ``{"logits", "boxes", "select_loss"}`` (the selection loss: candidate mode in training with
    ``gt_boxes``, else None); :class:`ravar_bench.model.ravar_model.RavarModel` adds it to the loss terms.
    """

    def __init__(self, in_dim: int, cls_hidden=(512, 256), box_hidden=(512, 128), dropout: float = 0.2,
                 box_activation: str = "sigmoid", num_classes: int = NUM_CLASSES, box_mode: str = "regress",
                 map_dim: int = 0, cand_hidden: int = 64, select_weight: float = 1.0, actor_pass: bool = False,
                 actor_size: int | None = None, actor_source: str = "stored", actor_norm: bool = False,
                 cand_appearance: bool = False):
        super().__init__()
        if actor_source not in ("stored", "clip"):
            raise ValueError(f"head.actor_source must be 'stored' or 'clip', got {actor_source!r}")
        self.actor_source = actor_source
        if box_activation not in ("sigmoid", "none"):
            raise ValueError(f"head.box_activation must be 'sigmoid' or 'none', got {box_activation!r}")
        if box_mode not in ("regress", "candidates"):
            raise ValueError(f"head.box_mode must be 'regress' or 'candidates', got {box_mode!r}")
        self.box_mode = box_mode
        self.select_weight = float(select_weight)
        self.map_dim = int(map_dim) if box_mode == "candidates" else 0
        self.actor_pass = bool(actor_pass)
        self.actor_size = None if actor_size is None else int(actor_size)  # the crop's side in px (None: the clip's)
        self.actor_norm = nn.LayerNorm(in_dim) if self.actor_pass and actor_norm else None
        if cand_appearance and not (self.actor_pass and box_mode == "candidates"):
            raise ValueError("head.cand_appearance=True needs head.actor_pass=True and head.box_mode='candidates' "
                             "(the candidates' appearance comes from the actor instance's starting copy)")
        self.cand_appearance = bool(cand_appearance)
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
            if self.cand_appearance:
                self.app_norm = nn.LayerNorm(in_dim)
                self.app_k = nn.Linear(in_dim, cand_hidden)
                self.app_q = nn.Linear(in_dim, cand_hidden)

    @torch.no_grad()
    def init_prior(self, prior: torch.Tensor, eps: float = 1e-3) -> None:
        """The classifier's output bias set to the logit of each class's share in the training labels, so that the
        first steps start from the label prior instead of spending them learning it (the prior-probability
        initialisation of Lin et al., "Focal Loss", ICCV 2017). ``prior``: (num_classes,) shares in [0, 1]."""
        last = self.cls[-1]
        if prior.shape != last.bias.shape:
            raise ValueError(f"init_prior: {tuple(prior.shape)} shares for a classifier of {last.bias.shape[0]} classes")
        p = prior.to(last.bias).clamp(eps, 1 - eps)
        last.bias.copy_(torch.log(p) - torch.log1p(-p))

    def forward(self, feats: torch.Tensor, detections: dict | None = None,
                spatial_map: torch.Tensor | None = None, gt_boxes: torch.Tensor | None = None,
                actor_feats: torch.Tensor | None = None, cand_feats: torch.Tensor | None = None) -> dict:
        """``{"logits": (B, 80), "boxes": (B, 4), "select_loss": scalar or None}`` (see :meth:`locate`)."""
        boxes, cls_in, select_loss = self.locate(feats, detections, spatial_map, gt_boxes, cand_feats)
        return {"logits": self.classify(cls_in, actor_feats), "boxes": boxes, "select_loss": select_loss}

    def classify(self, cls_in: torch.Tensor, actor_feats: torch.Tensor | None = None) -> torch.Tensor:
        """The 80 logits from what :meth:`locate` passed on, plus (``actor_pass``) the method's feature of the
        actor-centred second pass (RavarModel)."""
        if self.actor_pass:
            if actor_feats is None:
                raise ValueError("the head was built with actor_pass=True: it needs the actor pass's features "
                                 "(RavarModel runs that pass)")
            if self.actor_norm is not None:
                actor_feats = self.actor_norm(actor_feats)
            cls_in = torch.cat([cls_in, actor_feats], dim=-1)
        return self.cls(cls_in)

    def locate(self, feats: torch.Tensor, detections: dict | None = None, spatial_map: torch.Tensor | None = None,
               gt_boxes: torch.Tensor | None = None, cand_feats: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(box (B, 4), the classifier's input before the actor feature, the candidate-selection loss: a weighted
        scalar in training when ``gt_boxes`` are given in candidate mode, else None). ``cand_feats``: (B, N, in_dim)
        per detection, with ``cand_appearance`` (RavarModel computes them)."""
        select_loss = None
        boxes = self.box(feats)
        if self.box_activation == "sigmoid":
            boxes = boxes.sigmoid()
        if self.box_mode == "regress":
            return boxes, feats, None
        if detections is None:  # no detections at all (a hand-made batch): the fallback option alone, as
            # for a key frame in which nobody was detected (RavarModel.needs asks the data pipeline for them)
            b = feats.shape[0]
            detections = {"boxes": feats.new_zeros(b, 1, 4), "scores": feats.new_zeros(b, 1),
                          "mask": torch.zeros(b, 1, dtype=torch.bool, device=feats.device),
                          "cat_ids": torch.zeros(b, 1, dtype=torch.long, device=feats.device)}
            if self.cand_appearance and cand_feats is None:  # no candidate, so no appearance to read
                cand_feats = feats.new_zeros(b, 1, self.app_norm.normalized_shape[0])
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
        if self.cand_appearance:
            if cand_feats is None or cand_feats.shape[:2] != cand_boxes.shape[:2]:
                raise ValueError(f"the head was built with cand_appearance=True: it needs (B, N, {q.shape[-1]}) "
                                 f"candidate features, got {None if cand_feats is None else tuple(cand_feats.shape)}")
            ak = self.app_k(self.app_norm(cand_feats.to(q.dtype)))
            scores = scores + torch.einsum("bnc,bc->bn", ak, self.app_q(q)) / ak.shape[-1] ** 0.5
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
            select_loss = self.select_weight * F.cross_entropy(logits, target)
        if not self.training:
            # Scored boxes are the chosen option's own box: a weighted mean of two people is nobody's box, and
            # hedging between them (what the MSE rewards) is never a good IoU. Training keeps the soft mean.
            weights = F.one_hot(logits.argmax(dim=1), logits.shape[1]).to(weights.dtype)
        out_boxes = weights[:, :1] * boxes + torch.einsum("bn,bnk->bk", weights[:, 1:], cand_boxes)
        if region is None:
            return out_boxes, feats, select_loss
        glob = self.region_norm(spatial_map.mean(dim=(2, 3)))  # what the fallback "selects": the whole frame
        selected = weights[:, :1] * glob + torch.einsum("bn,bnc->bc", weights[:, 1:], region)
        return out_boxes, torch.cat([feats, selected], dim=-1), select_loss


def ravar_loss(logits, boxes, labels, gt_boxes, box_weight: float = 5.0, cls_weight: float = 1.0) -> dict:
    """L = cls_weight * BCE (Eq. 13, mean over classes and batch) + box_weight * MSE (Eq. 14).

    Eq. 14 sums the squared error over the 4 coordinates; we average that sum over the batch. The paper
    puts the weight 5 on the MSE term; the released code puts it on BCE (cls_weight=5, box_weight=1).
    """
    bce = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    mse = ((boxes - gt_boxes.to(boxes.dtype)) ** 2).sum(dim=1).mean()
    total = cls_weight * bce + box_weight * mse
    return {"loss": total, "bce": bce.detach(), "mse": mse.detach()}
