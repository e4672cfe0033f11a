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


def test_two_process_gloo_matches_one_process(tmp_path, tiny_synth_root):
    env = {**os.environ, "RAVAR_CACHE": str(tiny_synth_root.parent), "OMP_NUM_THREADS": "1"}
    ddp = tmp_path / "ddp"
    r = subprocess.run(_cmd(ddp, sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"),
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
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
