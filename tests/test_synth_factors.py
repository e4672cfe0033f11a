"""RefAVA-Synth's recorded factors (factors.json): present in every split in the stated proportions, consistent
with the annotations and the sentences; and the diagnostics and controls computed from them."""
import json
import math
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from ravar_bench.data.refava import load_split
from ravar_bench.data.synthetic import (
    ACTION_TYPE_NAMES,
    REF_TYPE_WEIGHTS,
    SHARED_COLOUR_SHARE,
    SynthConfig,
    action_types,
    ensure_synthetic,
)
from ravar_bench.engine.diagnostics import load_factors, strip_position

# 6 movies x 6 clips per split: 36 clips and ~100 instances per split (the tight check of the shares is
# test_composition_shares_over_many_draws, which renders nothing)
CFG = SynthConfig(seed=11, train_movies=6, val_movies=6, test_movies=6, clips_per_movie=6)
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = ensure_synthetic(CFG, cache_dir=tmp_path_factory.mktemp("factors"), progress=False)
    splits = {s: load_split(root, s)[0] for s in SPLITS}
    return root, splits, load_factors(root), json.loads((root / "attributes.json").read_text())


def _close(observed: int, n: int, p: float) -> bool:
    """Within 4 binomial standard deviations of the stated share p (plus half a count for rounding): a correct
    generator misses that on a given seed with probability < 1e-4, and the data are fixed by the seed."""
    return abs(observed - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 0.5


def test_factors_recorded_for_every_instance_and_consistent(data):
    root, splits, factors, attrs = data
    fac = factors["instances"]
    kinds = action_types()
    for split, insts in splits.items():
        per_clip = Counter(i.clip_key for i in insts)
        shirts = defaultdict(list)
        for i in insts:
            shirts[i.clip_key].append(attrs[i.key]["shirt"])
        for i in insts:
            f = fac[i.key]
            assert f["n_people"] == per_clip[i.clip_key]
            assert f["shared_colour"] == (shirts[i.clip_key].count(attrs[i.key]["shirt"]) > 1)
            assert f["action_types"] == [kinds[a] for a in i.actions]
            a = attrs[i.key]
            has_pos = a["pos"] in i.text or a["pos_cap"] in i.text or (a["size"] and f" {a['size']} " in f" {i.text} ")
            has_shirt = a["shirt"] in i.text
            if f["ref_type"] == "position":
                assert has_pos and not has_shirt and a["noun"] not in i.text.split(), i.text
            elif f["ref_type"] == "appearance":
                assert not has_pos and has_shirt, i.text
            else:
                assert has_pos, i.text
            if f["shared_colour"]:  # the sentence singles out its person by position or size
                assert has_pos and f["ref_type"] != "appearance", i.text
    # the factors never reach a method: the loader's instances carry none of them
    assert not {"n_people", "shared_colour", "ref_type"} & set(vars(splits["test"][0]))


def test_each_factor_present_in_each_split_in_the_stated_proportions(data):
    root, splits, factors, _ = data
    fac = factors["instances"]
    assert factors["stated"]["shared_colour_share"] == SHARED_COLOUR_SHARE
    for split, insts in splits.items():
        clips = {}
        for i in insts:
            clips[i.clip_key] = clips.get(i.clip_key, False) or fac[i.key]["shared_colour"]
        n_people = Counter(fac[i.key]["n_people"] for i in insts)
        multi = [c for c in clips if sum(1 for i in insts if i.clip_key == c) >= 2]
        shared = sum(clips[c] for c in multi)
        assert 0 < shared < len(multi), split
        assert _close(shared, len(multi), SHARED_COLOUR_SHARE), (split, shared, len(multi))
        assert n_people[1] > 0 and sum(v for k, v in n_people.items() if k >= 3) > 0, (split, n_people)
        # reference types: REF_TYPE_WEIGHTS for unique colours; without "appearance" for shared colours
        for is_shared in (False, True):
            group = [fac[i.key]["ref_type"] for i in insts if fac[i.key]["shared_colour"] == is_shared]
            weights = {t: w for t, w in REF_TYPE_WEIGHTS.items() if not (is_shared and t == "appearance")}
            total = sum(weights.values())
            counts = Counter(group)
            assert set(counts) <= set(weights), (split, counts)
            for t, w in weights.items():
                assert counts[t] > 0 and _close(counts[t], len(group), w / total), (split, is_shared, t, counts)
        types = Counter(t for i in insts for t in fac[i.key]["action_types"])
        assert all(types[t] > 0 for t in ACTION_TYPE_NAMES), (split, types)


def test_composition_shares_over_many_draws():
    """The scene-composition draws alone (no rendering), many of them: the shares are tight, not only plausible."""
    import random

    from ravar_bench.data.synthetic import _make_people, _ref_type, shares_colour

    rng = random.Random(0)
    multi = shared = 0
    for _ in range(4000):
        people = _make_people(rng)
        if len(people) >= 2:
            multi += 1
            pairs = Counter(p.shirt for p in people)
            assert max(pairs.values()) <= 2  # at most one pair dresses alike
            shared += max(pairs.values()) == 2
            assert sum(shares_colour(p, people) for p in people) == 2 * (max(pairs.values()) == 2)
    assert _close(shared, multi, SHARED_COLOUR_SHARE), (shared, multi)
    draws = Counter(_ref_type(rng, False) for _ in range(4000))
    for t, w in REF_TYPE_WEIGHTS.items():
        assert _close(draws[t], 4000, w / sum(REF_TYPE_WEIGHTS.values())), draws
    assert "appearance" not in {_ref_type(rng, True) for _ in range(500)}


def test_strip_position_removes_position_and_size_words_only():
    f = dict(pos="on the left", pos_cap="On the left", size="tall")
    assert strip_position("the woman on the left, dressed in purple", f) == "the woman, dressed in purple"
    assert strip_position("On the left, the man in blue trousers and a red top", f) == \
        "the man in blue trousers and a red top"
    assert strip_position("the tall man in red", f) == "the man in red"
    assert strip_position("the person on the left", f) == "the person"
    g = dict(pos="second from the right", pos_cap="Second from the right", size="")
    assert strip_position("a man in red clothes second from the right", g) == "a man in red clothes"
    assert strip_position("the man in the red shirt", g) == "the man in the red shirt"


class _Lookup(torch.nn.Module):
    """Evaluation-only stand-ins. ``text``: truth for (instance, sentence) pairs seen, nothing for others;
    ``motion``: the truth only when the clip's frames differ (a reader of motion); else text-blind."""

    def __init__(self, instances, mode):
        super().__init__()
        self.mode = mode
        self.method = torch.nn.Module()
        self.needs = frozenset({"text", "video"})
        self.table = {}
        for i in instances:
            lab = torch.full((80,), -5.0)
            lab[[a - 1 for a in i.actions]] = 5.0
            self.table[(i.key, i.text)] = (lab, torch.tensor(i.box))
        self.by_key = {k: v for (k, _), v in self.table.items()}

    def forward(self, b):
        if self.mode == "blind":
            m = b["video"].float().mean(dim=(1, 2, 3, 4))
            return {"logits": m[:, None].repeat(1, 80) * torch.arange(80), "boxes": torch.full((len(m), 4), 0.5)}
        unk = (torch.zeros(80), torch.zeros(4))
        if self.mode == "text":
            r = [self.table.get((k, t), unk) for k, t in zip(b["key"], b["text"])]
        else:
            r = [self.by_key[k] for k in b["key"]]
        logits, boxes = torch.stack([x[0] for x in r]), torch.stack([x[1] for x in r])
        if self.mode == "motion":
            moving = (b["video"].float().std(dim=1).flatten(1).amax(dim=1) > 0).float()
            logits = logits * moving[:, None]
        return {"logits": logits, "boxes": boxes}


def test_diagnostics_and_controls_in_the_result_row(data, tmp_path):
    from ravar_bench.config import load_config
    from ravar_bench.engine.data_source import open_source
    from ravar_bench.engine.text_cache import TextFeatureCache
    from ravar_bench.engine.trainer import evaluate_split

    root = data[0]
    src = open_source("synthetic", synth=CFG, cache_dir=str(root.parent), progress=False)
    cfg = load_config("x3d", "tiny", {"eval.n_boot": 0, "eval.swap_control": False})
    tc = TextFeatureCache(dict(cfg.text_encoder))
    insts = src.splits["test"]
    row = {m: evaluate_split(_Lookup(insts, m), src, "test", cfg, tc, tmp_path, m, 0) for m in ("text", "motion", "blind")}
    text, motion, blind = row["text"], row["motion"], row["blind"]
    n = len(insts)
    assert text["n_colour_shared"] + text["n_colour_distinct"] == n
    assert sum(text[f"n_ref_{t}"] for t in ("appearance", "position", "both")) == n
    assert text["mIoU_colour_shared"] == pytest.approx(100) and text["mAP_act_motion"] == pytest.approx(100)
    # no position words: the sentence-reader loses every shared-colour box, the text-blind model nothing
    assert text["nopos_n"] == text["n_colour_shared"] > 0
    assert text["nopos_drop_mIoU"] == pytest.approx(100) and blind["nopos_drop_mIoU"] == pytest.approx(0)
    # static clip: nothing changes for a reader of the sentence; a reader of motion loses the moving clips' actions
    assert text["static_drop_mAP"] == pytest.approx(0) and text["static_drop_mIoU"] == pytest.approx(0)
    assert motion["static_drop_mAP"] > 10 and motion["static_drop_mAP_act_motion"] > 10
    assert np.isfinite(blind["static_drop_mAP"])


def test_no_factor_columns_without_a_factors_file(tmp_path):
    from ravar_bench.engine.diagnostics import diagnostics

    class Src:
        root = tmp_path

    assert diagnostics({"keys": ["a"]}, Src(), "test") == {}
