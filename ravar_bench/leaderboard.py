"""results.csv in, Table-2-style leaderboards out (Markdown, LaTeX, a bar chart). Reads nothing else."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from .registry import TABLE2_FAMILIES

METRICS = ("mIoU", "mAP", "AUROC")
SPLITS = ("val", "test")
# which paper table holds a family's reference numbers
FAMILY_TABLE = {**{f: "2" for f in TABLE2_FAMILIES}, "Ablation": "3a", "Fusion": "3b", "Backbone": "4b"}
PROTOCOL = {
    "weighted": ("mAP and AUROC: per-class values weighted by the class's number of positives, over the classes "
                 "with at least one positive in the split (the authors' protocol, sklearn average='weighted')"),
    "macro": "mAP and AUROC: plain mean over the classes with at least one positive in the split",
}


def paper_results() -> pd.DataFrame:
    text = resources.files("ravar_bench").joinpath("reference/paper_results.csv").read_text()
    from io import StringIO

    return pd.read_csv(StringIO(text), dtype={"table": str})


def _cell(values: pd.Series) -> tuple[float, str]:
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return np.nan, "–"
    if len(v) == 1:
        return float(v[0]), f"{v[0]:.2f}"
    return float(v.mean()), f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


def table_frame(df: pd.DataFrame, families=TABLE2_FAMILIES, protocol: str = "weighted", bold="**") -> pd.DataFrame:
    """One row per method (families in order); ours as mean ± std over seeds, best per column in bold,
    then the paper's numbers as labelled reference columns."""
    prefix = "" if protocol == "weighted" else "macro_"
    paper = paper_results()
    rows, raw = [], []
    for fam in families:
        sub = df[df["family"] == fam]
        for method in dict.fromkeys(sub["method"]):
            m = sub[sub["method"] == method]
            pname = m["paper_name"].dropna().iloc[0] if "paper_name" in m and m["paper_name"].notna().any() else None
            row = {"Family": fam, "Method": pname or method, "seeds": m["seed"].nunique()}
            vals = {}
            for split in SPLITS:
                for met in METRICS:
                    col = met if met == "mIoU" else prefix + met
                    s = m[m["split"] == split][col] if col in m else pd.Series(dtype=float)
                    vals[(split, met)], row[f"{split} {met}"] = _cell(s)
            ref = paper[(paper["table"] == FAMILY_TABLE.get(fam, "2")) & (paper["method"] == pname)] if pname else paper.iloc[:0]
            for split in SPLITS:
                for met in METRICS:
                    v = ref[f"{split}_{met.lower()}"].iloc[0] if len(ref) else np.nan
                    row[f"paper {split} {met}"] = "–" if pd.isna(v) else f"{v:.2f}"
            rows.append(row)
            raw.append(vals)
    out = pd.DataFrame(rows)
    if bold and len(out):
        for split in SPLITS:
            for met in METRICS:
                col = np.array([r[(split, met)] for r in raw], dtype=float)
                if np.isfinite(col).any():
                    best = np.nanmax(col)
                    for k in np.where(np.isclose(col, best))[0]:
                        out.loc[k, f"{split} {met}"] = f"{bold}{out.loc[k, f'{split} {met}']}{bold}"
    return out


def render_markdown(df: pd.DataFrame, families=TABLE2_FAMILIES, protocol: str = "weighted") -> str:
    t = table_frame(df, families, protocol)
    if t.empty:
        return "_no results_\n"
    return tabulate(t, headers="keys", tablefmt="pipe", showindex=False, disable_numparse=True) + "\n"


def render_latex(df: pd.DataFrame, families=TABLE2_FAMILIES, protocol: str = "weighted") -> str:
    t = table_frame(df, families, protocol, bold=None)
    def esc(v):
        if not isinstance(v, str):
            return v
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
            v = v.replace(a, b)
        return v.replace("±", r"$\pm$")

    t = t.map(esc)
    t.columns = [esc(c) for c in t.columns]
    # latex_raw keeps our $\pm$; booktabs rules replace its \hline lines
    lines = tabulate(t, headers="keys", tablefmt="latex_raw", showindex=False, disable_numparse=True).splitlines()
    rules = iter([r"\toprule", r"\midrule", r"\bottomrule"])
    return "\n".join(next(rules, l) if l.strip() == r"\hline" else l for l in lines) + "\n"


def protocol_note(df: pd.DataFrame, protocol: str = "weighted") -> str:
    seeds = sorted(df["seed"].unique().tolist()) if len(df) else []
    config = ", ".join(sorted(df["config_set"].dropna().unique())) if "config_set" in df else "?"
    data = ", ".join(sorted(df["data"].dropna().unique())) if "data" in df else "?"
    n = {s: int(df[df["split"] == s]["n_instances"].max()) for s in SPLITS if "n_instances" in df and (df["split"] == s).any()}
    return (f"Protocol: {PROTOCOL[protocol]}. mIoU: mean over instances of the key-frame box IoU. Scores are not "
            f"IoU-gated (the gated variant is in results.csv as gated_mAP / gated_AUROC). All values in percent; "
            f"cells are mean ± std over seeds {seeds}; best of ours per column in bold. Config set: {config}. "
            f"Data: {data}; instances scored per split: {n}. Columns headed 'paper' are the numbers the paper "
            f"reports on the real RefAVA (Table 2), for reference only: they are not comparable with runs on "
            f"other data or with tiny configs.")


def bar_chart(df: pd.DataFrame, path: Path, metric: str = "mAP", families=TABLE2_FAMILIES) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = df[df["family"].isin(families)]
    if sub.empty:
        return None
    names = list(dict.fromkeys(sub["method"]))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 3.6))
    x = np.arange(len(names))
    for k, split in enumerate(SPLITS):
        g = sub[sub["split"] == split].groupby("method")[metric]
        mean = [g.mean().get(n, np.nan) for n in names]
        std = [np.nan_to_num(g.std(ddof=1).get(n, 0.0)) for n in names]
        ax.bar(x + (k - 0.5) * 0.38, mean, 0.38, yerr=std, capsize=2, label=split)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel(f"{metric} (%)")
    ax.legend()
    ax.set_title(f"{metric} per method (error bars: std over seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_leaderboard(out_dir: str | Path, command: str = "", protocol: str = "weighted") -> Path:
    """out_dir/results.csv -> out_dir/leaderboard.md (+ .tex, + mAP bar chart)."""
    out_dir = Path(out_dir)
    df = pd.read_csv(out_dir / "results.csv")
    png = bar_chart(df, out_dir / "leaderboard_mAP.png")
    parts = ["# RAVAR-Bench leaderboard (Table 2 shape)", ""]
    if command:
        parts += [f"Made by: `{command}`", ""]
    parts += [render_markdown(df, TABLE2_FAMILIES, protocol), protocol_note(df, protocol), ""]
    extra = [f for f in FAMILY_TABLE if f not in TABLE2_FAMILIES and (df["family"] == f).any()]
    for fam in extra:
        parts += [f"## {fam} (paper Table {FAMILY_TABLE[fam]})", "", render_markdown(df, (fam,), protocol)]
    if png:
        parts += [f"![mAP per method]({png.name})", ""]
    md = "\n".join(parts)
    path = out_dir / "leaderboard.md"
    for p, text in ((path, md), (out_dir / "leaderboard.tex", render_latex(df, TABLE2_FAMILIES, protocol))):
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, p)
    return path
