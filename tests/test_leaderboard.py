"""Leaderboard rendering from results.csv alone, and the two command-line tools end to end."""
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ravar_bench.leaderboard import render_latex, render_markdown, write_leaderboard

ROOT = Path(__file__).resolve().parent.parent


def _results(tmp_path):
    rows = []
    for method, fam, pname, base in (("x3d", "AAL", "X3D", 20.0), ("clip4clip", "VTR", "CLIP4CLIP", 30.0),
                                     ("i3d", "AAL", "I3D", 10.0)):
        for seed in (0, 1):
            for split in ("val", "test"):
                rows.append(dict(method=method, family=fam, split=split, seed=seed, mIoU=base + seed, mAP=base + 2 * seed,
                                 AUROC=50 + base / 10, paper_name=pname, macro_mAP=base - 5, macro_AUROC=50.0,
                                 config_set="tiny", data="synthetic:x", n_instances=100))
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "results.csv", index=False)
    return df


def test_markdown_shape_bold_and_paper_columns(tmp_path):
    df = _results(tmp_path)
    md = render_markdown(df)
    lines = [l for l in md.splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:3] == ["Family", "Method", "seeds"]
    assert "val mAP" in header and "test AUROC" in header and "paper val mAP" in header
    x3d = [l for l in lines if "| X3D" in l][0]
    clip = [l for l in lines if "CLIP4CLIP" in l][0]
    assert "20.50 ± 0.71" in x3d  # mIoU over seeds 20, 21
    assert "**31.00 ± 1.41**" in clip and "**" not in x3d.split("|")[5]  # best mAP bold, other not
    assert "44.45" in x3d and "39.48" in clip  # the paper's Table 2 val mAP
    assert lines.index(x3d) < lines.index(clip)  # AAL before VTR, as in Table 2
    assert lines.index([l for l in lines if "| I3D" in l][0]) < lines.index(x3d)  # the paper's row order


def test_latex_is_well_formed(tmp_path):
    tex = render_latex(_results(tmp_path))
    assert tex.count(r"\begin{tabular}") == 1 and tex.count(r"\end{tabular}") == 1
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1)
    body = [l for l in tex.splitlines() if l.rstrip().endswith(r"\\")]
    assert body and all(l.count("&") == len(spec) - 1 for l in body)
    assert "**" not in tex and "±" not in tex and r"$\pm$" in tex and "textbackslash" not in tex
    assert tex.splitlines()[1] == r"\toprule" and r"\bottomrule" in tex


def test_make_leaderboard_tool_regenerates_from_csv(tmp_path):
    _results(tmp_path)
    subprocess.run([sys.executable, str(ROOT / "tools/make_leaderboard.py"), str(tmp_path)], check=True,
                   capture_output=True)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "X3D" in md and "Protocol:" in md and "weighted" in md
    assert (tmp_path / "leaderboard.tex").is_file() and (tmp_path / "leaderboard_mAP.png").stat().st_size > 1000
    write_leaderboard(tmp_path, protocol="macro")
    assert "plain mean" in (tmp_path / "leaderboard.md").read_text()


def test_run_bench_end_to_end(tmp_path, tiny_synth_root):
    out = tmp_path / "run"
    env = {"RAVAR_CACHE": str(tiny_synth_root.parent), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, str(ROOT / "tools/run_bench.py"), "--methods", "x3d,clip4clip", "--epochs", "1",
           "--out", str(out), "--synth-seed", "7", "--synth-movies", "2,1,1", "--synth-clips", "3", "--no-progress",
           "--cfg-options", "data.img_size=64"]
    import os

    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_csv(out / "results.csv")
    assert set(df["method"]) == {"x3d", "clip4clip"} and set(df["split"]) == {"val", "test"}
    assert df[["mIoU", "mAP", "AUROC"]].notna().all().all()
    md = (out / "leaderboard.md").read_text()
    assert "X3D" in md and "CLIP4CLIP" in md
    assert (out / "predictions" / "x3d__val__seed0.npz").is_file()
