"""An offline, seeded paraphraser for the test-time rephrasing suite (paper Table 4a).

Each reference gets two rephrasings. When the referring attributes are known (RefAVA-Synth writes
attributes.json), a rephrasing is a HELD-OUT template (never used to make training texts) filled
with them; otherwise (real data) it is a synonym substitution plus clause reordering. Deterministic
for (text, variant, seed); no network, no model.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

from .synthetic import HELDOUT_TEMPLATES

SYNONYMS = {
    "man": ["guy", "gentleman"], "woman": ["lady"], "boy": ["young boy", "kid"], "girl": ["young girl"],
    "person": ["individual", "figure"], "shirt": ["top", "t-shirt"], "top": ["shirt", "blouse"],
    "trousers": ["pants", "slacks"], "pants": ["trousers"], "wearing": ["dressed in", "with"],
    "dressed": ["clothed"], "clothes": ["outfit", "clothing"], "jacket": ["coat"], "coat": ["jacket"],
    "hat": ["cap"], "tall": ["taller"], "short": ["shorter"], "left": ["left-hand side"],
    "right": ["right-hand side"], "middle": ["centre"], "old": ["elderly"], "young": ["youthful"],
}


def _rng(text: str, variant: int, seed: int) -> random.Random:
    return random.Random(hashlib.sha1(f"{seed}|{variant}|{text}".encode()).hexdigest())


def rephrase_free_text(text: str, variant: int, seed: int = 0) -> str:
    rng = _rng(text, variant, seed)
    words = re.findall(r"[A-Za-z]+|[^A-Za-z]+", text)
    out = []
    for w in words:
        alts = SYNONYMS.get(w.lower())
        if alts and rng.random() < 0.7:
            rep = rng.choice(alts)
            out.append(rep.capitalize() if w[0].isupper() else rep)
        else:
            out.append(w)
    new = "".join(out)
    clauses = [c.strip()[0].lower() + c.strip()[1:] for c in new.split(",") if c.strip()]
    if len(clauses) > 1 and (variant % 2 == 0 or rng.random() < 0.5):
        clauses = clauses[1:] + clauses[:1]  # reorder the clauses
        new = ", ".join(clauses)
    return new if new != text else f"{new}, the one described"


def rephrase(text: str, variant: int, seed: int = 0, attributes: dict | None = None) -> str:
    """Variant 1 or 2 of ``text``; with ``attributes`` (the generator's fields) a held-out template."""
    if variant not in (1, 2):
        raise ValueError(f"variant must be 1 or 2, got {variant}")
    if attributes:
        rng = _rng(text, variant, seed)
        tpl = rng.choice(HELDOUT_TEMPLATES[variant - 1::2] or HELDOUT_TEMPLATES)
        return " ".join(tpl.format(**attributes).split())
    return rephrase_free_text(text, variant, seed)


def load_attributes(root: str | Path) -> dict:
    p = Path(root) / "attributes.json"
    return json.loads(p.read_text()) if p.is_file() else {}
