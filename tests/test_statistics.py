"""Bootstrap intervals, the paired test, the referring swap control, people breakdown, rephrasing."""
import numpy as np
import pytest
import torch

from ravar_bench.config import load_config
from ravar_bench.data.paraphrase import rephrase
from ravar_bench.data.synthetic import HELDOUT_TEMPLATES, TEMPLATES, SynthConfig
from ravar_bench.engine.data_source import open_source
from ravar_bench.engine.text_cache import TextFeatureCache
from ravar_bench.engine.trainer import evaluate_split
from ravar_bench.scoring.stats import align, bootstrap_ci, paired_bootstrap_p
from tests.conftest import TINY_SYNTH


def _pred(rng, n, c=3, signal=1.0):
    labels = (rng.random((n, c)) < 0.3).astype(int)
    scores = rng.normal(size=(n, c)) + signal * labels
    gt = np.tile([0.2, 0.2, 0.6, 0.6], (n, 1))
    shift = rng.uniform(0, 0.4, n)
    boxes = gt + shift[:, None] * np.array([1, 0, 1, 0])
    return {"keys": [f"k{i}" for i in range(n)], "scores": scores, "labels": labels, "boxes": boxes, "gt_boxes": gt}


def test_bootstrap_interval_covers_the_true_mIoU_at_about_95_percent():
    # IoU of a box shifted by s (in x) against the 0.4-wide gt: (0.4 - s) / (0.4 + s), s ~ U(0, 0.4)
    s = np.linspace(0, 0.4, 200001)
    iou = 100 * (0.4 - s) / (0.4 + s)
    true, sigma = iou.mean(), iou.std()
    rng = np.random.default_rng(0)
    hits, widths = 0, []
    reps, n = 120, 150
    for r in range(reps):
        lo, hi = bootstrap_ci(_pred(rng, n), n_boot=300, seed=r)["mIoU"]
        hits += lo <= true <= hi
        widths.append(hi - lo)
    assert 0.9 <= hits / reps <= 0.99, hits / reps
    # a 95% interval of a mean is 2 x 1.96 standard errors wide; a 90% one would be 2 x 1.645 (ratio 0.84)
    ratio = np.mean(widths) / (2 * 1.96 * sigma / np.sqrt(n))
    assert 0.93 <= ratio <= 1.05, ratio


def _one_instance_apart(n=20, j=7):
    """A and B agree everywhere except B's box of instance j (IoU 1 for A, 1/3 for B there)."""
    keys = [f"k{i}" for i in range(n)]
    labels = np.tile([1, 0, 1], (n, 1))
    labels[::2] = [0, 1, 0]
    scores = np.random.default_rng(3).normal(size=(n, 3))
    gt = np.tile([0.2, 0.2, 0.6, 0.6], (n, 1))
    a = {"keys": keys, "scores": scores, "labels": labels, "boxes": gt.copy(), "gt_boxes": gt}
    b = dict(a, boxes=gt.copy())
    b["boxes"][j] = [0.4, 0.2, 0.8, 0.6]  # half overlapping: IoU 0.2*0.4 / (2*0.16 - 0.08) = 1/3
    return a, b


def test_paired_bootstrap_p_has_its_known_value():
    """Resampled mIoU(A) - mIoU(B) is 0 when instance j is not drawn and > 0 otherwise, so the two-sided p is
    2 * P(j not drawn) = 2 * (1 - 1/n)^n (0.717 for n = 20): a one-sided p or a missing factor 2 gives 0.358."""
    a, b = _one_instance_apart()
    n_boot = 2000
    want = 2 * (1 - 1 / 20) ** 20
    p_ab = paired_bootstrap_p(a, b, n_boot=n_boot)
    p_ba = paired_bootstrap_p(b, a, n_boot=n_boot)
    assert p_ab["mIoU"] == pytest.approx(want, abs=4 * 2 * np.sqrt(want / 2 * (1 - want / 2) / n_boot))
    assert p_ab == p_ba  # symmetric: same resamples, the two tails swap
    assert p_ab["mAP"] == 1.0 and p_ab["AUROC"] == 1.0  # identical scores: no difference at all


def test_paired_bootstrap_p_small_for_a_clear_difference():
    rng = np.random.default_rng(1)
    a = _pred(rng, 300, c=5, signal=2.0)
    b = dict(a, scores=a["scores"] + rng.normal(0, 3, a["scores"].shape))  # B: same instances, noisier scores
    assert paired_bootstrap_p(a, b, n_boot=300)["mAP"] < 0.01


def test_paired_bootstrap_aligns_by_key():
    a, b = _one_instance_apart(n=20, j=7)
    # B holds instances k5..k24 (k20.. are extra), in reversed order; on the shared keys it equals A
    extra = _one_instance_apart(n=25)[0]
    order = list(range(24, 4, -1))
    b = {k: ([extra["keys"][i] for i in order] if k == "keys" else np.asarray(v)[order]) for k, v in extra.items()}
    aa, bb = align(a, b)
    assert aa["keys"] == bb["keys"] == [f"k{i}" for i in sorted(range(5, 20), key=str)]
    np.testing.assert_array_equal(aa["scores"], bb["scores"])
    assert paired_bootstrap_p(a, b, n_boot=200) == {"mIoU": 1.0, "mAP": 1.0, "AUROC": 1.0}
    # now B differs from A on one shared instance only: p has the known value for the 15 shared instances
    b["boxes"][order.index(7)] = [0.4, 0.2, 0.8, 0.6]
    p = paired_bootstrap_p(a, b, n_boot=2000)["mIoU"]
    assert p == pytest.approx(2 * (1 - 1 / 15) ** 15, abs=0.09)
    with pytest.raises(ValueError, match="share no instance keys"):
        paired_bootstrap_p(a, dict(a, keys=[f"z{i}" for i in range(20)]))


def test_add_significance_picks_the_best_by_mAP(tmp_path):
    """Three methods on the same instances; the best by mAP is neither first by name nor first on disk."""
    import json

    from ravar_bench.engine.results import result_path, write_json_atomic
    from ravar_bench.engine.trainer import save_predictions
    from ravar_bench.report.post_run import add_significance
    from ravar_bench.scoring.metrics import evaluate

    rng = np.random.default_rng(5)
    base = _pred(rng, 120, c=4, signal=0.0)
    preds = {"aaa": dict(base, scores=base["scores"] + 0.3 * base["labels"]),
             "mmm": dict(base, scores=base["scores"] + 3.0 * base["labels"]),  # the best
             "zzz": dict(base, scores=base["scores"] + 1.0 * base["labels"])}
    for m, p in preds.items():
        r = evaluate(p["scores"], p["labels"], p["boxes"], p["gt_boxes"])
        save_predictions(p, tmp_path / "predictions" / f"{m}__test__seed0.npz")
        write_json_atomic(result_path(tmp_path, m, "test", 0), {"method": m, "family": "AAL", "split": "test", "seed": 0,
                                                                "mIoU": r["mIoU"], "mAP": r["mAP"], "AUROC": r["AUROC"]})
    add_significance(tmp_path, ["aaa", "mmm", "zzz"], n_boot=200)
    rows = {m: json.loads(result_path(tmp_path, m, "test", 0).read_text()) for m in preds}
    assert {r["best_method"] for r in rows.values()} == {"mmm"}
    assert rows["mmm"]["p_vs_best_mAP"] == -1.0
    assert rows["aaa"]["p_vs_best_mAP"] < 0.05 and 0 <= rows["zzz"]["p_vs_best_mAP"] <= 1
    assert rows["aaa"]["p_vs_best_mAP"] == paired_bootstrap_p(preds["aaa"], preds["mmm"], 200, 0)["mAP"]


def test_swapped_reference_belongs_to_another_person_of_the_same_clip():
    from ravar_bench.data.refava import Instance
    from ravar_bench.engine.evaluation import swapped_references

    insts = []
    for clip, people in (("v1___902", 3), ("v1___906", 1), ("v2___902", 2), ("v3___910", 1)):
        vid, t = clip.split("___")
        for p in range(people):
            insts.append(Instance(f"{clip}___{p}", vid, int(t), str(p), (0.1, 0.1, 0.5, 0.5), (12,),
                                  f"person {p} of {clip}"))
    swapped = swapped_references(insts)
    own = {i.key: i for i in insts}
    # every instance of a clip with >= 2 people appears once; single-person clips are left out
    assert sorted(i.key for i in swapped) == sorted(i.key for i in insts if not i.key.startswith(("v1___906", "v3")))
    for s in swapped:
        o = own[s.key]
        assert (s.box, s.actions, s.person_id) == (o.box, o.actions, o.person_id)  # scored against its own labels
        donor = [i for i in insts if i.text == s.text]
        assert len(donor) == 1 and donor[0].clip_key == o.clip_key and donor[0].person_id != o.person_id
    # in the 3-person clip the three references are permuted, none kept
    assert sorted(s.text for s in swapped if s.clip_key == "v1___902") == sorted(
        i.text for i in insts if i.clip_key == "v1___902")


class _Fixed(torch.nn.Module):
    """Evaluation-only stand-ins (no head to train): a text oracle and a text-blind model."""

    def __init__(self, instances, uses_text):
        super().__init__()
        self.uses_text = uses_text
        self.method = torch.nn.Identity()  # the engine reads per-method counters from model.method
        self.needs = frozenset({"text", "video"})
        self.table = {}
        for i in instances:
            lab = torch.full((80,), -5.0)
            lab[[a - 1 for a in i.actions]] = 5.0
            self.table[i.text] = (lab, torch.tensor(i.box))

    def forward(self, b):
        if self.uses_text:
            unknown = (torch.zeros(80), torch.zeros(4))  # a reference it never saw (a rephrasing)
            logits = torch.stack([self.table.get(t, unknown)[0] for t in b["text"]])
            boxes = torch.stack([self.table.get(t, unknown)[1] for t in b["text"]])
        else:
            m = b["video"].mean(dim=(1, 2, 3, 4))
            logits = m[:, None].repeat(1, 80) * torch.arange(80)
            boxes = torch.sigmoid(m)[:, None].repeat(1, 4) * torch.tensor([0.5, 0.5, 1, 1])
        return {"logits": logits, "boxes": boxes}


@pytest.fixture(scope="module")
def env(tiny_synth_root):
    src = open_source("synthetic", synth=SynthConfig(**TINY_SYNTH), cache_dir=str(tiny_synth_root.parent), progress=False)
    cfg = load_config("x3d", "tiny", {"eval.n_boot": 50, "eval.rephrase": True})
    return src, cfg, TextFeatureCache(dict(cfg.text_encoder))


def test_swap_control_zero_for_text_blind_positive_for_text_user(env, tmp_path):
    src, cfg, tc = env
    insts = sum(src.splits.values(), [])
    blind = evaluate_split(_Fixed(insts, False), src, "train", cfg, tc, tmp_path, "blind", 0)
    oracle = evaluate_split(_Fixed(insts, True), src, "train", cfg, tc, tmp_path, "oracle", 0)
    assert blind["swap_n"] > 0 and blind["swap_n"] == oracle["swap_n"]
    assert blind["swap_drop_mAP"] == 0 and blind["swap_drop_mIoU"] == 0
    assert oracle["swap_drop_mAP"] > 10 and oracle["swap_drop_mIoU"] > 10
    assert oracle["mIoU"] > 80  # below 100 only where two persons share a reference text across clips
    # the breakdown by people covers every instance once
    assert sum(oracle[f"n_p{b}"] for b in ("1", "2", "3", "4", "5+")) == len(src.splits["train"])
    assert oracle["mAP_ci_lo"] <= oracle["mAP"] <= oracle["mAP_ci_hi"]
    # rephrased references are new strings: the oracle's lookup fails on them -> rephrase metrics exist and
    # the text-blind model is unaffected by rephrasing
    assert blind["rephrase_mAP"] == pytest.approx(blind["mAP"])
    assert oracle["rephrase_mIoU"] < oracle["mIoU"] - 30


def test_rephrase_is_seeded_and_uses_heldout_templates():
    t = "the woman on the left, dressed in blue"
    assert rephrase(t, 1) == rephrase(t, 1) and rephrase(t, 1) != t and rephrase(t, 2) != t
    attrs = dict(noun="man", shirt="red", trousers="black", pos="on the right", pos_cap="On the right", size="",
                 headwear="a red hat")
    r = rephrase("whatever", 1, attributes=attrs)
    heldout = [h.format(**attrs) for h in HELDOUT_TEMPLATES]
    train = [h.format(**attrs) for h in TEMPLATES if "{size}" not in h]
    assert r in heldout and r not in train
