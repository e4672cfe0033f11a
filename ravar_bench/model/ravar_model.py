"""A registered method plus the shared head (and, with ``head.actor_pass``, the actor instance): one forward from
a batch to the predictions and, in training, every loss term."""
from __future__ import annotations

import torch
from torch import nn

from ..data.dataset import stored_resolution
from ..encoders.checkpoint import loaded_weights
from .actor_crop import actor_batch
from .candidates import CandidateAppearance
from .head import SharedHead, ravar_loss


class RavarModel(nn.Module):
    """A registered method plus the shared head: ``forward(batch) -> {"logits", "boxes"}``.

    With ``head.actor_pass`` the model also holds ``actor``, a second instance of the same method (same
    config, its own weights) that encodes the clip cropped around one person (:mod:`ravar_bench.model.actor_crop`);
    the classifier reads its feature beside the whole-clip one. Why a second instance rather than the same
    weights twice: sharing them, the whole-clip pass's box and choice losses and the crop's action loss pull
    one small backbone two ways, and the shared backbone learned no actions from the crop (e9 in
    benchmarks/default_levers.md), while the same backbone trained on crops alone did.

    With ``head.cand_appearance`` it also holds ``appearance`` (:class:`CandidateAppearance`: a frozen copy of the
    actor instance as it starts), whose features of each person candidate the chooser reads.
    """

    def __init__(self, method: nn.Module, head: SharedHead, actor: nn.Module | None = None, loss: dict | None = None,
                 appearance: CandidateAppearance | None = None):
        super().__init__()
        self.method = method
        self.head = head
        if head.actor_pass and actor is None:
            raise ValueError("head.actor_pass needs the actor instance of the method (ravar_bench.factory builds it)")
        self.actor = actor
        if head.cand_appearance and appearance is None:
            raise ValueError("head.cand_appearance needs the candidates' appearance encoder "
                             "(ravar_bench.factory builds it)")
        self.appearance = appearance
        self.loss_weights = dict(loss or {})  # ravar_loss's keyword arguments (the config's ``loss`` section)
        for name in getattr(actor, "objective_only", ()):  # the actor pass does not use the method's objective
            actor.get_submodule(name).requires_grad_(False)

    @property
    def loaded_weights(self) -> list[dict]:
        """Per weights file loaded into the method: {file, sha256, layout, set, total} (tensors of the module it was
        loaded into that the file set, of its total), for the result row; the actor instance's files after the method's."""
        return loaded_weights(self.method) + (loaded_weights(self.actor) if self.actor is not None else [])

    @property
    def needs(self) -> frozenset:
        needs = self.method.needs | ({"detections"} if self.head.box_mode == "candidates" else set())
        # the actor pass reads its fixed sentence's features, where the method reads frozen text features
        reads_frozen_text = bool(needs & {"text_emb", "text_tokens"})
        if self.head.actor_pass and self.head.actor_source == "stored":  # crop from the frames as stored
            needs |= stored_resolution(needs)
        return frozenset(needs | ({"actor_text"} if self.head.actor_pass and reads_frozen_text else set()))

    def _check(self, feats: torch.Tensor) -> None:
        if feats.dim() != 2 or feats.shape[1] != self.method.feat_dim:
            raise RuntimeError(f"{self.method.method_name} returned features of shape {tuple(feats.shape)}; "
                               f"the contract is (B, {self.method.feat_dim})")

    def forward(self, batch: dict) -> dict:
        """``{"logits": (B, 80), "boxes": (B, 4)}``, plus ``"losses"`` (:meth:`losses`) in training when the batch
        has its labels and box."""
        self.method.spatial_map = None
        self.method.aux_loss = None  # a method with its own objective sets it in forward
        feats = self.method(batch)
        self._check(feats)
        own_loss = self.method.aux_loss
        smap = self.method.spatial_map if self.head.map_dim else None
        cand = self.appearance(batch) if self.appearance is not None and "detections" in batch else None
        boxes, cls_in, select_loss = self.head.locate(feats, batch.get("detections"), smap, batch.get("box"), cand)
        actor = None
        if self.head.actor_pass:
            # Train on the true person's crop (as two-stage AVA detectors train on ground-truth boxes); evaluate
            # on the crop of the box the method chose, so a wrong choice costs the actions too.
            # The actor instance's own aux_loss (if any) is not used: the method's objective belongs to the
            # whole-clip pass.
            where = batch["box"] if self.training and "box" in batch else boxes
            actor = self.actor(actor_batch(batch, where.detach(), size=self.head.actor_size))
            self._check(actor)
        out = {"logits": self.head.classify(cls_in, actor), "boxes": boxes}
        if self.training and "labels" in batch and "box" in batch:
            out["losses"] = self.losses(out, batch, own_loss, select_loss)
        return out

    def losses(self, out: dict, batch: dict, own_loss=None, select_loss=None) -> dict:
        """Every loss term of one training step: the shared loss (:func:`ravar_loss`: ``bce``, ``mse``), the
        candidate-selection loss (``select``) and the method's own objective (``method``), summed in ``loss``."""
        terms = ravar_loss(out["logits"], out["boxes"], batch["labels"], batch["box"], **self.loss_weights)
        extra = own_loss if select_loss is None else (select_loss if own_loss is None else own_loss + select_loss)
        if extra is not None:
            terms["loss"] = terms["loss"] + extra
        for key, value in (("method", own_loss), ("select", select_loss)):
            if value is not None:
                terms[key] = value.detach()
        return terms
