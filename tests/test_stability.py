"""The ranking's stability: Spearman's rho on hand-made rankings, bootstrap rank intervals on hand-made predictions."""
import numpy as np
import pandas as pd
import pytest

from ravar_bench.scoring.stability import compare_runs, rank_intervals, spearman, stability_section


def test_spearman_on_hand_made_rankings():
    a = {"m1": 5.0, "m2": 4.0, "m3": 3.0, "m4": 2.0, "m5": 1.0}
    assert spearman(a, dict(a))["rho"] == pytest.approx(1.0)
    assert spearman(a, {m: -v for m, v in a.items()})["rho"] == pytest.approx(-1.0)
    # two neighbouring pairs swapped: sum d^2 = 4, rho = 1 - 6 * 4 / (5 * (25 - 1)) = 0.8
    b = {"m1": 4.0, "m2": 5.0, "m3": 2.0, "m4": 3.0, "m5": 1.0}
    r = spearman(a, b)
    assert r["rho"] == pytest.approx(0.8) and r["n"] == 5
    # only common methods count; fewer than 3 give no rho
    assert spearman(a, {"m1": 1.0, "m2": 2.0, "x": 3.0})["n"] == 2
    assert np.isnan(spearman(a, {"m1": 1.0, "m2": 2.0})["rho"])


def _preds(rng, n=200):
    labels = (rng.random((n, 6)) < 0.3).astype(np.int8)
    gt = np.tile([0.2, 0.2, 0.6, 0.6], (n, 1))
    keys = [f"k{i}" for i in range(n)]

    def method(noise, shift):
        scores = labels + rng.normal(0, noise, labels.shape) if noise else labels.astype(float)
        return {"keys": list(keys), "scores": scores, "labels": labels,
                "boxes": gt + shift[:, None] * np.array([1, 0, 1, 0]), "gt_boxes": gt}

    shift = rng.uniform(0.05, 0.3, n)
    return {
        "best": method(0.0, np.zeros(n)),  # perfect scores and boxes
        "b": method(1.5, shift),
        "c": method(1.5, rng.permutation(shift)),  # same noise and same shifts in another order: indistinguishable
    }


def test_rank_intervals_clear_winner_and_indistinguishable_pair():
    preds = _preds(np.random.default_rng(0))
    r = rank_intervals(preds, n_boot=200, seed=0).set_index("method")
    for met in ("mAP", "mIoU"):
        assert (r.loc["best", f"{met}_rank_lo"], r.loc["best", f"{met}_rank_hi"]) == (1, 1)
        lo_b, hi_b = r.loc["b", f"{met}_rank_lo"], r.loc["b", f"{met}_rank_hi"]
        lo_c, hi_c = r.loc["c", f"{met}_rank_lo"], r.loc["c", f"{met}_rank_hi"]
        assert (lo_b, hi_b) == (2, 3) and (lo_c, hi_c) == (2, 3), r  # each is second on some resamples, third on others


def test_rank_intervals_resample_instances_jointly():
    # c's box is worse than b's on EVERY instance by a small margin: paired resamples always rank b ahead,
    # although the two mIoU distributions over independent resamples would overlap widely
    preds = _preds(np.random.default_rng(1))
    b = preds["b"]
    preds["c"] = dict(b, boxes=b["boxes"] + np.array([0.005, 0, 0.005, 0]))
    # and the key order of a prediction file does not matter
    rev = {k: (v[::-1] if k != "keys" else v[::-1]) for k, v in preds["best"].items()}
    preds["best"] = rev
    r = rank_intervals(preds, n_boot=200, seed=0).set_index("method")
    assert (r.loc["b", "mIoU_rank_lo"], r.loc["b", "mIoU_rank_hi"]) == (2, 2)
    assert (r.loc["c", "mIoU_rank_lo"], r.loc["c", "mIoU_rank_hi"]) == (3, 3)
    assert r.loc["best", "mIoU_rank"] == 1


def _run_folder(path, preds, offsets):
    (path / "predictions").mkdir(parents=True)
    rows = []
    for m, p in preds.items():
        np.savez_compressed(path / "predictions" / f"{m}__test__seed0.npz", keys=np.array(p["keys"]),
                            scores=p["scores"], boxes=p["boxes"], labels=p["labels"], gt_boxes=p["gt_boxes"])
        rows.append({"method": m, "family": "AAL", "paper_name": m.upper(), "split": "test", "seed": 0,
                     "mAP": 50 + offsets[m], "mIoU": 40 - offsets[m]})
    rows.append({"method": "chance", "family": "Control", "paper_name": None, "split": "test", "seed": 0,
                 "mAP": 1.0, "mIoU": 1.0})
    pd.DataFrame(rows).to_csv(path / "results.csv", index=False)


def test_stability_section_and_two_run_comparison(tmp_path):
    preds = _preds(np.random.default_rng(2))
    _run_folder(tmp_path / "run0", preds, {"best": 3, "b": 2, "c": 1})
    _run_folder(tmp_path / "run1", preds, {"best": 1, "b": 2, "c": 3})
    comp = compare_runs(tmp_path / "run0", tmp_path / "run1")
    assert comp["mAP"]["rho"] == pytest.approx(-1.0) and comp["mIoU"]["rho"] == pytest.approx(-1.0)
    assert comp["mAP"]["n"] == 3  # the chance control is not ranked
    md = "\n".join(stability_section(tmp_path / "run0", other_dir=tmp_path / "run1", n_boot=50))
    assert "## Stability of the ranking" in md and "| BEST " in md and "rho = -1.00" in md
    assert "chance" not in md
    assert (tmp_path / "run0" / "leaderboard_ranks.png").is_file()


def test_default_budget_criteria_on_hand_made_runs(tmp_path):
    """benchmarks/default_budget.py's criteria 1-2 on a run folder made by hand: one method far above the chance
    control with a large swap drop (passes), one that equals the control (fails)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "default_budget", Path(__file__).resolve().parent.parent / "benchmarks" / "default_budget.py")
    budget = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget)
    rng = np.random.default_rng(3)
    n = 150
    labels = (rng.random((n, 6)) < 0.3).astype(np.int8)
    gt = np.tile([0.2, 0.2, 0.6, 0.6], (n, 1))
    keys = np.array([f"k{i}" for i in range(n)])
    chance = {"scores": np.zeros((n, 6)), "boxes": np.tile([0.0, 0.0, 0.3, 0.3], (n, 1))}
    good = {"scores": labels + rng.normal(0, 0.3, labels.shape), "boxes": gt + rng.uniform(0, 0.05, (n, 4))}
    files = {"chance": chance, "x3d": good, "clip4clip": dict(chance), "x3d__swap": chance}
    (tmp_path / "predictions").mkdir()
    for name, p in files.items():
        m, _, tag = name.partition("__")
        np.savez_compressed(tmp_path / "predictions" / f"{m}__test__seed0{'__' + tag if tag else ''}.npz",
                            keys=keys, labels=labels, gt_boxes=gt, **p)
    (tmp_path / "results").mkdir()  # the static-clip control's motion drop, as the trainer writes it per row
    for m, drop in (("x3d", 5.0), ("clip4clip", 1.0)):
        (tmp_path / "results" / f"{m}__test__seed0.json").write_text(f'{{"static_drop_mAP_act_motion": {drop}}}')
    types = {k: ("appearance" if i % 2 else "position") for i, k in enumerate(keys)}
    c = budget.criteria_12(tmp_path, n_boot=200, types=types)
    rows = {r["method"]: r for r in c["rows"]}
    assert set(rows) == {"x3d", "clip4clip"}  # the control is the reference, not a row
    assert rows["x3d"]["p_chance_mIoU"] < 0.01 and rows["x3d"]["p_swap_mIoU"] < 0.01
    assert rows["x3d"]["mAP_vs_chance"] > 15 and rows["clip4clip"]["p_chance_mAP"] == 1.0
    assert c["c1"] == {"methods_reading_text": 2, "passing": 1, "met": False}
    assert c["c3"]["beat_chance_p01"] == 1 and c["c3"]["best"] == pytest.approx(rows["x3d"]["mAP_vs_chance"])
    # criterion 2 on the appearance half only; criterion 4: one of the two clip readers loses >= 3 motion points
    assert c["c2_appearance"] == {"instances": n // 2, "passing": 1, "methods_reading_text": 2, "met": False}
    assert rows["x3d"]["p_app_mIoU"] < 0.01 and rows["clip4clip"]["app_mIoU_vs_chance"] == pytest.approx(0.0)
    assert c["c4_motion"] == {"methods_reading_a_clip": 2, "losing_3": 1, "met": True}
