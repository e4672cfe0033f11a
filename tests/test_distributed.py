"""Two CPU processes with gloo (torchrun): training runs, and evaluation scores every instance exactly once,
giving the same metrics as one process evaluating the same trained model."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cmd(out, *launcher):
    return [*launcher, str(ROOT / "tools/run_bench.py"), "--methods", "x3d", "--epochs", "1", "--out", str(out),
            "--synth-seed", "7", "--synth-movies", "2,1,1", "--synth-clips", "3", "--no-progress",
            # batch 1 at evaluation: the same arithmetic per instance however the split is sharded
            "--cfg-options", "eval.batch_size=1"]


# run_bench under a spy: every rank appends what it hands to gather_predictions (its own shard) to a log
_SPY = """
import json, os, runpy, sys
sys.path[:0] = [{root!r}, {tools!r}]
import ravar_bench.engine.distributed as D
_gather = D.gather_predictions
def spy(pred, order):
    rank, world = D.rank_world()
    with open(os.path.join({log!r}, f"rank{{rank}}.jsonl"), "a") as f:
        f.write(json.dumps({{"rank": rank, "world": world, "keys": list(pred["keys"]), "order": list(order)}}) + "\\n")
    return _gather(pred, order)
D.gather_predictions = spy
sys.argv = [{script!r}] + sys.argv[1:]
runpy.run_path({script!r}, run_name="__main__")
"""


def test_two_process_gloo_matches_one_process(tmp_path, tiny_synth_root):
    env = {**os.environ, "RAVAR_CACHE": str(tiny_synth_root.parent), "OMP_NUM_THREADS": "1"}
    ddp = tmp_path / "ddp"
    spy_log = tmp_path / "spy"
    spy_log.mkdir()
    spy = tmp_path / "spy_run_bench.py"
    spy.write_text(_SPY.format(root=str(ROOT), tools=str(ROOT / "tools"), log=str(spy_log),
                               script=str(ROOT / "tools/run_bench.py")))
    cmd = _cmd(ddp, sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    cmd[cmd.index(str(ROOT / "tools/run_bench.py"))] = str(spy)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    # two ranks ran, as one world of 2, and every gathered evaluation was split into disjoint shards covering it
    import json

    calls = {p.name: [json.loads(l) for l in p.read_text().splitlines()] for p in sorted(spy_log.glob("*.jsonl"))}
    assert set(calls) == {"rank0.jsonl", "rank1.jsonl"}
    r0, r1 = calls["rank0.jsonl"], calls["rank1.jsonl"]
    assert len(r0) == len(r1) >= 2 and all(c["world"] == 2 for c in r0 + r1)
    for a, b in zip(r0, r1):
        assert a["order"] == b["order"] and a["keys"] and b["keys"]
        assert not set(a["keys"]) & set(b["keys"]) and sorted(a["keys"] + b["keys"]) == sorted(a["order"])
    a = pd.read_csv(ddp / "results.csv")
    # one process evaluates the model the two-process job trained (its results are not copied, only runs/)
    single = tmp_path / "single"
    shutil.copytree(ddp / "runs", single / "runs")
    r = subprocess.run(_cmd(single, sys.executable), capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    b = pd.read_csv(single / "results.csv")
    from ravar_bench.data.refava import load_split

    for split in ("val", "test"):
        ra, rb = a[a["split"] == split].iloc[0], b[b["split"] == split].iloc[0]
        assert ra["n_instances"] == rb["n_instances"] == len(load_split(tiny_synth_root, split)[0])
        for m in ("mIoU", "mAP", "AUROC", "swap_drop_mAP"):
            assert ra[m] == pytest.approx(rb[m], abs=1e-3), (split, m)
        pa = np.load(ddp / "predictions" / f"x3d__{split}__seed0.npz")
        pb = np.load(single / "predictions" / f"x3d__{split}__seed0.npz")
        assert list(pa["keys"]) == list(pb["keys"])  # same instances, same order, no duplicates
        np.testing.assert_allclose(pa["scores"], pb["scores"], atol=1e-5)


def test_submitit_fan_out_local(tmp_path, tiny_synth_root):
    """Methods x seeds as independent submitit jobs (local executor), merged into one table."""
    env = {**os.environ, "RAVAR_CACHE": str(tiny_synth_root.parent), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "fan"
    cmd = _cmd(out, sys.executable) + ["--launcher", "submitit-local", "--seeds", "0,1"]
    cmd[cmd.index("x3d")] = "x3d,clip4clip"
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 2 * 2 * 2 and set(df["seed"]) == {0, 1}
    assert len(list((out / "submitit").glob("*_result.pkl"))) == 4  # four jobs ran
    md = (out / "leaderboard.md").read_text()
    assert "X3D" in md and "CLIP4CLIP" in md and "±" in md


def _shard_pred(keys, idx):
    n = len(keys)
    g = np.random.default_rng(0)
    full = {"keys": list(keys), "scores": g.normal(size=(n, 80)), "boxes": g.random((n, 4)),
            "labels": (g.random((n, 80)) < 0.1).astype(np.int8), "gt_boxes": g.random((n, 4))}
    return full, {k: ([v[i] for i in idx] if k == "keys" else v[idx]) for k, v in full.items()}


def test_shards_and_gather_with_a_mocked_world_of_three(monkeypatch):
    """An odd N over 3 ranks: shards disjoint and covering N without padding; the gather puts every rank's rows
    back in the dataset's order, and refuses a duplicated or a missing instance."""
    import torch.distributed as dist

    from ravar_bench.engine import distributed as D

    n, world = 11, 3
    keys = [f"k{i:02d}" for i in range(n)][::-1]  # the dataset's order (not sorted)
    shards = []
    for rank in range(world):
        monkeypatch.setattr(D, "rank_world", lambda rank=rank: (rank, world))
        shards.append(D.shard(n))
    assert sorted(sum(shards, [])) == list(range(n)) and [len(s) for s in shards] == [4, 4, 3]
    full, _ = _shard_pred(keys, np.arange(n))
    parts = [_shard_pred(keys, np.array(s))[1] for s in shards]

    def fake_all_gather(out, obj):
        out[:] = parts

    monkeypatch.setattr(D, "rank_world", lambda: (0, world))
    monkeypatch.setattr(dist, "all_gather_object", fake_all_gather)
    got = D.gather_predictions(parts[0], keys)
    assert got["keys"] == keys
    for k in ("scores", "boxes", "labels", "gt_boxes"):
        np.testing.assert_array_equal(got[k], full[k])
    parts[2] = _shard_pred(keys, np.array(shards[2] + [0]))[1]  # instance 0 scored twice
    with pytest.raises(RuntimeError, match="12 predictions for 11 instances"):
        D.gather_predictions(parts[0], keys)
    parts[2] = _shard_pred(keys, np.array(shards[2][:-1]))[1]  # one instance never scored
    with pytest.raises(RuntimeError, match="10 predictions for 11 instances"):
        D.gather_predictions(parts[0], keys)
