"""The pretraining corpus: RefAVA-Synth movies from seeds of their own, read as person-centred clips.

Disjoint from every benchmark split: the benchmark draws its movies from the seed streams "<seed>-<split>-<i>"
of data seeds 0, 1, ...; the corpus uses :data:`CORPUS_SEED` (1000), whose streams no benchmark seed reaches.
No referring task is read from it: the sentence every clip carries is replaced by one fixed sentence (the actor
pass's, ``model.actor_crop.ACTOR_SENTENCE``), and the clip is cropped around its person's true box, so nothing
singles out one person of a scene.
"""
from __future__ import annotations

import json

import torch

from ..data.synthetic import GENERATOR_VERSION, SynthConfig
from .pretext import attribute_targets

CORPUS_SEED = 1000
# 192 train movies (~3,000 person clips; 96 until e18 in benchmarks/default_levers.md) and 12 held-out ones for the
# pretext score; the test split is not read (one movie, because every split of a release must hold something)
CORPUS = SynthConfig(seed=CORPUS_SEED, train_movies=192, val_movies=12, test_movies=1)


def corpus_record(cfg: SynthConfig = CORPUS) -> dict:
    from dataclasses import asdict

    return {"generator_version": GENERATOR_VERSION, "synth": asdict(cfg), "digest": cfg.digest()}


def attribute_table(root) -> dict[str, list[int]]:
    """Instance key -> the pretext's attribute classes, from the generator's attributes.json."""
    fields = json.loads((root / "attributes.json").read_text())
    return {k: attribute_targets(v) for k, v in fields.items()}


def attrs_of(batch: dict, table: dict) -> torch.Tensor:
    return torch.tensor([table[k] for k in batch["key"]], dtype=torch.long)


# The corpus's own captions for the image-text pretext (e19): none is one of the benchmark's reference templates
# (data.synthetic.TEMPLATES / HELDOUT_TEMPLATES), and they read only the person's own fields (no position, no size,
# no other person), so nothing refers
CAPTION_TEMPLATES = (
    "a photo of a {noun} in a {shirt} shirt and {trousers} trousers, {headwear}",
    "a {noun} wearing {shirt} on top and {trousers} below, with {headwear}",
    "{headwear}, a {shirt} top and {trousers} trousers: a {noun}",
    "picture of one {noun}: {shirt} shirt, {trousers} trousers, {headwear}",
)


def caption_of(key: str, fields: dict) -> str:
    """One caption per person clip, its template picked by a CRC32 of the instance key (the same on every run)."""
    import zlib

    template = CAPTION_TEMPLATES[zlib.crc32(key.encode()) % len(CAPTION_TEMPLATES)]
    return template.format(**{k: fields[k] for k in ("noun", "shirt", "trousers", "headwear")})


def caption_table(root) -> dict[str, str]:
    """Instance key -> its caption, from the generator's attributes.json."""
    fields = json.loads((root / "attributes.json").read_text())
    return {k: caption_of(k, v) for k, v in fields.items()}
