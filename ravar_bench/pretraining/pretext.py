"""The pretext task: what a tiny tower learns before the benchmark, from labels the generator gives for free.

Chosen before any run (README, "Starting points"), by one rule: the targets are what the benchmark's criteria ask
a tower to see in ONE person, and nothing that singles a person out among others (no referring):
- the person's atomic actions (80-way multi-label, as Kinetics pretraining teaches actions; the generator's pose,
  limb motion, props and interactions decide them);
- the person's appearance as the generator drew it (formula-driven labels, as FractalDB): shirt colour, trousers
  colour, headwear (hat colour / hair colour / none) and noun (man, woman, ...), each a classification.
Relative attributes (position, "tall" / "short") are left out: they exist only against the other people of a scene.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.ava import NUM_CLASSES
from ..data.synthetic import COLOURS, HAIR, TROUSERS

NOUNS = ("man", "woman", "boy", "girl", "old man", "old woman")
HEADWEAR = tuple(f"a {c} hat" for c in ("red", "blue", "black", "white", "yellow")) + tuple(
    f"{c} hair" for c in sorted(HAIR)) + ("no hair",)
# attribute -> its classes (the generator's own vocabularies, in a fixed order)
GROUPS = {"shirt": tuple(sorted(COLOURS)), "trousers": tuple(sorted(TROUSERS)), "headwear": HEADWEAR, "noun": NOUNS}


def n_outputs() -> int:
    return NUM_CLASSES + sum(len(v) for v in GROUPS.values())


def attribute_targets(fields: dict) -> list[int]:
    """The class index of each group for one person's generator fields (``data.synthetic.reference_fields``)."""
    out = []
    for g, classes in GROUPS.items():
        if fields.get(g) not in classes:
            raise ValueError(f"pretext: attribute {g}={fields.get(g)!r} is not one of the generator's {classes}")
        out.append(classes.index(fields[g]))
    return out


class PretextHead(nn.Module):
    """One linear layer from the method's pooled feature to the 80 action logits and each group's logits."""

    def __init__(self, feat_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(feat_dim)  # methods' features differ in scale by orders of magnitude
        self.fc = nn.Linear(feat_dim, n_outputs())

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(feats))


def split_logits(logits: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    acts, rest = logits[:, :NUM_CLASSES], logits[:, NUM_CLASSES:]
    groups = list(torch.split(rest, [len(v) for v in GROUPS.values()], dim=1))
    return acts, groups


def pretext_loss(logits: torch.Tensor, actions: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
    """BCE over the 80 actions + the mean cross-entropy of the attribute groups (``attrs``: (B, groups) long)."""
    acts, groups = split_logits(logits)
    ce = sum(F.cross_entropy(g, attrs[:, k]) for k, g in enumerate(groups)) / len(groups)
    return F.binary_cross_entropy_with_logits(acts, actions) + ce


def pretext_score(logits: np.ndarray, actions: np.ndarray, attrs: np.ndarray) -> dict:
    """Held-out score: action mAP (mean over the classes present, in %) beside the constant predictor's
    (each class's share), and each attribute group's accuracy beside its majority class's."""
    from ..scoring.metrics import average_precision_per_class

    acts, groups = split_logits(torch.from_numpy(logits))
    present = actions.sum(0) > 0
    ap = average_precision_per_class(acts.numpy()[:, present], actions[:, present])
    out = {"action_mAP": round(100 * float(np.nanmean(ap)), 2),
           "action_mAP_chance": round(100 * float(actions[:, present].mean(0).mean()), 2)}
    for k, (g, lg) in enumerate(zip(GROUPS, groups)):
        out[f"{g}_acc"] = round(100 * float((lg.argmax(1).numpy() == attrs[:, k]).mean()), 2)
        out[f"{g}_acc_chance"] = round(100 * float(np.bincount(attrs[:, k]).max() / len(attrs)), 2)
    return out


# e19 (benchmarks/default_levers.md): the pair's loss as built and run (weight 1, temperature 0.07); the shipped files
# are e18's, made without it (weight 0), until e19 is judged against e18 on one machine. Its ten @32 files: commit
# 44f44c5 (git checkout 44f44c5 -- ravar_bench/weights/tiny), or remade with weight 1 by `ravar-bench pretrain`
CONTRASTIVE = dict(weight=0.0, temperature=0.07)


def pair_similarity(visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Cosine similarity (B_visual, B_text); a visual (B, K, E) counts its best-matching alternative (BLIP-2's ITC
    takes the best of its queries)."""
    if visual.shape[-1] != text.shape[-1]:
        raise ValueError(f"contrastive pair: visual width {visual.shape[-1]} != text width {text.shape[-1]}")
    v, t = F.normalize(visual.float(), dim=-1), F.normalize(text.float(), dim=-1)
    if v.dim() == 2:
        return v @ t.T
    return torch.einsum("bke,ce->bkc", v, t).max(dim=1).values


def same_caption(captions: list[str]) -> torch.Tensor:
    """(B, B) bool: which clips of the batch carry the same caption (each is a positive of the others)."""
    ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    idx = torch.tensor([ids[c] for c in captions])
    return idx[:, None] == idx[None, :]


def contrastive_loss(visual: torch.Tensor, text: torch.Tensor, captions: list[str],
                     temperature: float = CONTRASTIVE["temperature"]) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP's), where clips with the same caption are positives of each other: the target of
    each row spreads evenly over its positives (otherwise identical captions would be pushed apart)."""
    logits = pair_similarity(visual, text) / temperature
    pos = same_caption(captions).float().to(logits.device)
    target = pos / pos.sum(1, keepdim=True)  # symmetric: clips with one caption have the same number of positives
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def caption_retrieval(visual: torch.Tensor, text: torch.Tensor, captions: list[str]) -> dict:
    """Held-out: the share of clips whose best-matching caption, among the distinct captions of the held-out set,
    is their own (in %), beside the most frequent caption's share (what a constant answer gets)."""
    first = {c: i for i, c in reversed(list(enumerate(captions)))}
    distinct = list(dict.fromkeys(captions))
    sim = pair_similarity(visual, text[[first[c] for c in distinct]])
    column = {c: k for k, c in enumerate(distinct)}
    own = torch.tensor([column[c] for c in captions])
    counts = torch.bincount(own)
    return {"caption_R1": round(100 * float((sim.argmax(1) == own).float().mean()), 2),
            "caption_R1_chance": round(100 * float(counts.max() / len(captions)), 2)}
