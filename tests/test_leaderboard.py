"""Leaderboard rendering from results.csv alone, and the two command-line tools end to end."""
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ravar_bench.report.leaderboard import render_latex, render_markdown, write_leaderboard

ROOT = Path(__file__).resolve().parent.parent


def _results(tmp_path):
    rows = []
    for method, fam, pname, base in (("x3d", "AAL", "X3D", 20.0), ("clip4clip", "VTR", "CLIP4CLIP", 30.0),
                                     ("i3d", "AAL", "I3D", 10.0)):
        for seed in (0, 1):
            for split in ("val", "test"):
                rows.append(dict(method=method, family=fam, split=split, seed=seed, mIoU=base + seed, mAP=base + 2 * seed,
                                 AUROC=50 + base / 10, paper_name=pname, macro_mAP=base - 5 + 3 * seed, macro_AUROC=50.0,
                                 config_set="tiny", data="synthetic:x", n_instances=100))
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "results.csv", index=False)
    return df


def test_markdown_shape_and_paper_columns(tmp_path):
    df = _results(tmp_path)
    md = render_markdown(df)
    lines = [l for l in md.splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:3] == ["Family", "Method", "seeds"]
    assert "val mAP" in header and "test AUROC" in header and "paper val mAP" in header
    x3d = [l for l in lines if "| X3D" in l][0]
    clip = [l for l in lines if "CLIP4CLIP" in l][0]
    assert "20.50 ± 0.71" in x3d  # mIoU over seeds 20, 21
    assert "44.45" in x3d and "39.48" in clip  # the paper's Table 2 val mAP
    assert lines.index(x3d) < lines.index(clip)  # AAL before VTR, as in Table 2
    assert lines.index([l for l in lines if "| I3D" in l][0]) < lines.index(x3d)  # the paper's row order


# a different winner in every column, a tie in test mIoU, and a name that needs escaping in LaTeX
WINNERS = {"val mIoU": {"I3D"}, "val mAP": {"CLIP4CLIP"}, "val AUROC": {"X3D"}, "test mIoU": {"X3D", "CLIP4CLIP"},
           "test mAP": {"I3D"}, "test AUROC": {"CLIP4CLIP"}}
ODD_NAME = "net_a&b%c#1"


def _per_column_results():
    means = {"x3d": (30, 10, 70, 33, 11, 75), "i3d": (40, 20, 60, 10, 44, 70), "clip4clip": (20, 50, 65, 33, 22, 80),
             ODD_NAME: (5, 5, 50, 5, 5, 50)}
    meta = {"x3d": ("AAL", "X3D"), "i3d": ("AAL", "I3D"), "clip4clip": ("VTR", "CLIP4CLIP"), ODD_NAME: ("AAL", None)}
    rows = []
    for method, vals in means.items():
        for seed in (0, 1):
            for k, split in enumerate(("val", "test")):
                r = dict(method=method, family=meta[method][0], paper_name=meta[method][1], split=split, seed=seed,
                         config_set="tiny", data="synthetic:x", n_instances=100)
                for j, met in enumerate(("mIoU", "mAP", "AUROC")):
                    r[met] = vals[3 * k + j] + (seed - 0.5)  # mean = the value above, std 0.71
                if split == "test":
                    r.update(mAP_ci_lo=r["mAP"] - 3, mAP_ci_hi=r["mAP"] + 3)
                rows.append(r)
    return pd.DataFrame(rows)


def test_markdown_bolds_the_best_cell_per_column():
    md = render_markdown(_per_column_results())
    lines = [l for l in md.splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    table = [dict(zip(header, (c.strip() for c in l.strip("|").split("|")))) for l in lines[2:]]
    assert {r["Method"] for r in table} == {"X3D", "I3D", "CLIP4CLIP", ODD_NAME}
    for col, winners in WINNERS.items():
        for r in table:
            bold = r[col].startswith("**") and r[col].endswith("**")
            assert bold == (r["Method"] in winners), (col, r["Method"], r[col])
    # bold wraps the whole mean ± std cell
    assert [r for r in table if r["Method"] == "I3D"][0]["val mIoU"] == "**40.00 ± 0.71**"


def test_latex_is_well_formed_and_escaped():
    tex = render_latex(_per_column_results())
    assert tex.count(r"\begin{tabular}") == 1 and tex.count(r"\end{tabular}") == 1
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1)
    body = [l for l in tex.splitlines() if l.rstrip().endswith(r"\\")]
    assert body and all(l.count("&") - l.count(r"\&") == len(spec) - 1 for l in body)
    assert "**" not in tex and "±" not in tex and "textbackslash" not in tex
    assert tex.splitlines()[1] == r"\toprule" and r"\bottomrule" in tex
    assert r"net\_a\&b\%c\#1" in tex  # the odd name, every special character escaped
    assert r"test mAP 95\% CI" in tex  # the interval column's header
    i3d = [l for l in body if "I3D" in l][0]
    assert r"40.00 $\pm$ 0.71" in i3d and "[41.0, 47.0]" in i3d  # a mean $\pm$ std cell; I3D's test-mAP interval


def test_make_leaderboard_tool_regenerates_from_csv(tmp_path):
    _results(tmp_path)
    subprocess.run([sys.executable, str(ROOT / "tools/make_leaderboard.py"), str(tmp_path)], check=True,
                   capture_output=True)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "X3D" in md and "Protocol:" in md and "weighted" in md
    assert (tmp_path / "leaderboard.tex").is_file() and (tmp_path / "leaderboard_mAP.png").stat().st_size > 1000
    x3d = [l for l in md.splitlines() if l.startswith("| AAL") and "X3D" in l][0]
    assert "21.00 ± 1.41" in x3d  # weighted val mAP: 20, 22
    write_leaderboard(tmp_path, protocol="macro")
    md = (tmp_path / "leaderboard.md").read_text()
    assert "plain mean" in md
    cells = [c.strip() for c in [l for l in md.splitlines() if l.startswith("| AAL") and "X3D" in l][0].split("|")]
    header = [c.strip() for c in [l for l in md.splitlines() if l.startswith("| Family")][0].split("|")]
    # the macro table's val mAP is macro_mAP over seeds (15, 18), not the weighted mAP (20, 22)
    assert cells[header.index("val mAP")] == "16.50 ± 2.12"
    assert cells[header.index("val mIoU")] == "20.50 ± 0.71"  # mIoU has one definition under every protocol


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
