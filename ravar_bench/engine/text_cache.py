"""Frozen text-encoder features, computed once per unique string and cached in memory and on disk.

The disk file is keyed by the encoder's identity (type, folder name, max length); it is a torch file of
tensors and a list of strings, loaded with weights_only=True.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from ..encoders.text import FrozenTextEncoder
from ..files.atomic import atomic_write
from ..model.actor_crop import ACTOR_SENTENCE

log = logging.getLogger(__name__)


class TextFeatureCache:
    def __init__(self, encoder_cfg: dict, cache_dir: str | Path | None = None):
        self.encoder = FrozenTextEncoder(**encoder_cfg)
        self.index: dict[str, int] = {}
        self.pooled = torch.zeros(0, self.encoder.dim)
        self.tokens = torch.zeros(0, self.encoder.max_len, self.encoder.dim)
        self.mask = torch.zeros(0, self.encoder.max_len, dtype=torch.bool)
        self.path = None
        if cache_dir is not None:
            h = hashlib.sha1(self.encoder.identity.encode()).hexdigest()[:10]
            self.path = Path(cache_dir) / f"text_features_{h}.pt"
            if self.path.is_file():
                try:
                    blob = torch.load(self.path, weights_only=True)
                    self.index = {s: i for i, s in enumerate(blob["strings"])}
                    self.pooled, self.tokens, self.mask = blob["pooled"], blob["tokens"], blob["mask"]
                except Exception as e:  # a damaged cache is recomputed, not trusted
                    log.warning("text feature cache %s unreadable (%s); recomputing", self.path, e)
                    self.index = {}

    def prepare(self, strings) -> None:
        new = [s for s in dict.fromkeys(strings) if s not in self.index]
        if not new:
            return
        pooled, tokens, mask = self.encoder(new)
        base = len(self.index)
        for k, s in enumerate(new):
            self.index[s] = base + k
        self.pooled = torch.cat([self.pooled, pooled])
        self.tokens = torch.cat([self.tokens, tokens])
        self.mask = torch.cat([self.mask, mask])
        if self.path is not None:
            state = {"strings": list(self.index), "pooled": self.pooled, "tokens": self.tokens, "mask": self.mask}
            atomic_write(self.path, lambda tmp: torch.save(state, tmp))

    def _rows(self, strings) -> torch.Tensor:
        self.prepare(strings)
        return torch.tensor([self.index[s] for s in strings], dtype=torch.long)

    def _features(self, strings, needs) -> dict:
        """text_emb / text_tokens + text_mask of ``strings``, as far as ``needs`` asks."""
        out = {}
        if "text_emb" in needs or "text_tokens" in needs:
            rows = self._rows(strings)
            if "text_emb" in needs:
                out["text_emb"] = self.pooled[rows]
            if "text_tokens" in needs:
                out["text_tokens"], out["text_mask"] = self.tokens[rows], self.mask[rows]
        return out

    def add_to_batch(self, batch: dict, needs) -> dict:
        """Attach text_emb / text_tokens+text_mask / detections.cat_emb as the method needs, and for a model
        with the actor pass ("actor_text") the same features of its one fixed sentence under ``actor_text``."""
        batch.update(self._features(batch.get("text", []), needs))
        if "actor_text" in needs:
            batch["actor_text"] = self._features([ACTOR_SENTENCE] * len(batch["text"]), needs)
        if "detections" in needs:
            names = batch["detections"]["cat_names"]
            flat = [n for row in names for n in row]
            rows = self._rows(flat)
            batch["detections"]["cat_emb"] = self.pooled[rows].view(len(names), len(names[0]), -1)
        return batch
