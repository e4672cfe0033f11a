"""The one prediction head and loss every method shares (paper Sec. 3.2 and Eq. 13-14)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
    """MLP classification (80 logits) + MLP box regression (normalised x1, y1, x2, y2).

    Defaults are the released code's shapes: cls D-512-256-80 with dropout 0.2 after the first layer,
    box D-512-128-4. ``box_activation="sigmoid"`` keeps boxes inside [0, 1] (the released code has no
    output activation: ``"none"``).
    """

    def __init__(self, in_dim: int, cls_hidden=(512, 256), box_hidden=(512, 128), dropout: float = 0.2,
                 box_activation: str = "sigmoid", num_classes: int = NUM_CLASSES):
        super().__init__()
        if box_activation not in ("sigmoid", "none"):
            raise ValueError(f"head.box_activation must be 'sigmoid' or 'none', got {box_activation!r}")
        self.cls = _mlp(in_dim, tuple(cls_hidden), num_classes, dropout, dropout_first=True)
        self.box = _mlp(in_dim, tuple(box_hidden), 4, 0.0, dropout_first=True)
        self.box_activation = box_activation

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.cls(feats)
        boxes = self.box(feats)
        if self.box_activation == "sigmoid":
            boxes = boxes.sigmoid()
        return logits, boxes


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
    """A registered method plus the shared head: ``forward(batch) -> {"logits", "boxes"}``."""

    def __init__(self, method: nn.Module, head: SharedHead):
        super().__init__()
        self.method = method
        self.head = head

    @property
    def needs(self) -> frozenset:
        return self.method.needs

    def forward(self, batch: dict) -> dict:
        feats = self.method(batch)
        if feats.dim() != 2 or feats.shape[1] != self.method.feat_dim:
            raise RuntimeError(f"{self.method.method_name} returned features of shape {tuple(feats.shape)}; "
                               f"the contract is (B, {self.method.feat_dim})")
        logits, boxes = self.head(feats)
        return {"logits": logits, "boxes": boxes}
