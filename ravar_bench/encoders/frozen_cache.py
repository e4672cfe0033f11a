"""Outputs of a FROZEN part computed once per clip and reused every epoch (and across runs on disk).

A frozen module's output for a clip never changes while its weights and the clip's pixels stay the same,
so recomputing it every epoch is pure waste (BLIP-2's frozen ViT is most of RefAtomNet's compute). The
engine binds each cache to a file whose name hashes the method's config, the seed (random-init frozen
weights depend on it) and the data identity, so any change of those starts a new cache.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import torch

log = logging.getLogger(__name__)


class FrozenFeatureCache:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.store: dict[str, torch.Tensor] = {}
        self.path: Path | None = None
        self.hits = self.misses = 0
        self._dirty = False

    def bind(self, path: str | Path) -> None:
        """Use ``path`` for persistence; load what an earlier run stored there."""
        self.path = Path(path)
        if self.path.is_file():
            try:
                self.store = torch.load(self.path, weights_only=True)
            except Exception as e:  # a damaged cache is recomputed, never trusted
                log.warning("frozen-feature cache %s unreadable (%s); recomputing", self.path, e)
                self.store = {}

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        torch.save(self.store, tmp)
        os.replace(tmp, self.path)
        self._dirty = False

    def __call__(self, keys: list[str] | None, inputs: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]):
        """``fn(inputs[i])`` for each item i, with items whose key is cached taken from the cache."""
        return self.lookup(keys, lambda idx: fn(inputs if idx is None else inputs[idx]), inputs.device)

    def lookup(self, keys: list[str] | None, compute: Callable[[list[int] | None], torch.Tensor],
               device: torch.device | str = "cpu") -> torch.Tensor:
        """Item i's output for each key, computing ``compute(indices)`` (a tensor with one row per index; None: all
        items) only for the keys not cached, each once (a batch often holds several references to one clip). For
        inputs that are not one tensor (a batch dict cut per item)."""
        if not self.enabled or keys is None:
            return compute(None)
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in self.store:
                first.setdefault(k, i)
        missing = list(first.values())
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            with torch.no_grad():
                out = compute(missing)
            for j, i in enumerate(missing):
                self.store[keys[i]] = out[j].detach().to("cpu", copy=True)
            self._dirty = True
        return torch.stack([self.store[k] for k in keys]).to(device)


def frozen_caches(model: torch.nn.Module) -> list[tuple[str, FrozenFeatureCache]]:
    """The enabled caches of ``model``'s modules, by module name (the engine binds each to a file)."""
    return [(name, m.feature_cache) for name, m in model.named_modules()
            if isinstance(getattr(m, "feature_cache", None), FrozenFeatureCache) and m.feature_cache.enabled]
