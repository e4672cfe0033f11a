"""results.csv in, the paper's tables out (Markdown, LaTeX, CSV) plus bar charts. Tables read results.csv alone.

One function per output, as lm-evaluation-harness does: ``table_frame`` turns the results into the
paper's table shape; ``render_markdown`` / ``render_latex`` print it; ``write_suite`` writes all three.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from ..engine.results import read_results_table
from ..files.atomic import write_text_atomic
from ..reference import COSTS_CSV, paper_results
from ..registry import FAMILIES, SUITE_ORIGIN, TABLE2_FAMILIES
from ..scoring.stability import stability_section
from ..suites import suite as get_suite
from .diagnostic_tables import diagnostic_sections
from .run_notes import headline_protocol, run_notes, select_rows

log = logging.getLogger(__name__)

METRICS = ("mIoU", "mAP", "AUROC")
SPLITS = ("val", "test")
PROTOCOL = {
    "weighted": ("mAP and AUROC: per-class values weighted by the class's number of positives, over the classes "
                 "with at least one positive in the split (the authors' protocol, sklearn average='weighted')"),
    "macro": "mAP and AUROC: plain mean over the classes with at least one positive in the split",
    "gated": ("mAP and AUROC as the authors' weighted protocol, after zeroing the action scores of every instance "
              "whose predicted box has IoU < 0.5 (the authors' gated test script)"),
}
_PREFIX = {"weighted": "", "macro": "macro_", "gated": "gated_"}


def _cell(values: pd.Series) -> tuple[float, str]:
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return np.nan, "–"
    if len(v) == 1:
        return float(v[0]), f"{v[0]:.2f}"
    return float(v.mean()), f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


def _rows_in_order(df: pd.DataFrame, methods=None, families=None) -> list[str]:
    """The given methods in order, or the families' methods in the paper's row order (others after)."""
    if methods is not None:
        return [m for m in methods if (df["method"] == m).any()]
    # families a plug-in declared itself come after the paper's, before the controls
    own = tuple(f for f in dict.fromkeys(df["family"].dropna()) if f not in FAMILIES)
    fams = families or TABLE2_FAMILIES + own + ("Control",)
    rows = {name: k for k, name in enumerate(paper_results()["method"])}
    out = []
    for fam in fams:
        sub = df[df["family"] == fam].drop_duplicates("method")
        pn = sub["paper_name"] if "paper_name" in sub else pd.Series([None] * len(sub), index=sub.index)
        key = [rows.get(p, 10 ** 6) if isinstance(p, str) else 10 ** 6 for p in pn]
        out += [m for _, m in sorted(zip(key, sub["method"]), key=lambda t: t[0])]
    return out


def _outside(df: pd.DataFrame) -> pd.Series:
    """Per row: is it a method from outside the suite (a plug-in)? results.csv's ``origin`` names its module."""
    if "origin" not in df:
        return pd.Series(False, index=df.index)
    return df["origin"].notna() & (df["origin"] != SUITE_ORIGIN)


def plugin_note(df: pd.DataFrame) -> list[str]:
    """The footnote for rows marked †: which methods came from outside the suite, and from which module."""
    ext = df[_outside(df)].drop_duplicates("method")
    if ext.empty:
        return []
    names = ", ".join(f"{r.method} ({r.origin})" for r in ext.itertuples())
    return [f"† From outside the suite (plug-ins), scored by the same code: {names}.", ""]


def table_frame(df: pd.DataFrame, suite: str = "table2", protocol: str = "weighted", bold: str | None = "**",
                methods=None, families=None) -> pd.DataFrame:
    """The suite's table: ours (mean ± std over seeds; best per column in bold), the test-mAP 95% bootstrap
    interval and paired-bootstrap p-value against the best method when present, then the paper's numbers
    as labelled reference columns."""
    spec = get_suite(suite)
    if methods is None and families is None and spec["methods"] != "all":
        methods = spec["methods"]
    prefix = spec.get("value_prefix", "") or _PREFIX[protocol]
    aliases = spec.get("aliases", {})
    paper = paper_results()
    paper = paper[paper["table"] == spec["table"]]
    rows, raw = [], []
    for method in _rows_in_order(df, methods, families):
        m = df[df["method"] == method]
        pname = m["paper_name"].dropna().iloc[0] if "paper_name" in m and m["paper_name"].notna().any() else None
        row = {"Family": m["family"].iloc[0], "Method": (pname or method) + ("†" if _outside(m).any() else ""),
               "seeds": m["seed"].nunique()}
        vals = {}
        for split in SPLITS:
            for met in METRICS:
                col = (prefix + met) if (met != "mIoU" or prefix == "rephrase_") else met
                s = m[m["split"] == split][col] if col in m else pd.Series(dtype=float)
                vals[(split, met)], row[f"{split} {met}"] = _cell(s)
        test = m[m["split"] == "test"]
        if "mAP_ci_lo" in test and test["mAP_ci_lo"].notna().any() and not prefix:
            row["test mAP 95% CI"] = f"[{test['mAP_ci_lo'].mean():.1f}, {test['mAP_ci_hi'].mean():.1f}]"
        if "p_vs_best_mAP" in test and test["p_vs_best_mAP"].notna().any() and not prefix:
            p = test["p_vs_best_mAP"].max()
            floor = 2 / test["p_n_boot"].max() if "p_n_boot" in test and test["p_n_boot"].notna().any() else 0
            row["p vs best (test mAP)"] = "best" if p < 0 else (f"< {floor:.3f}" if p < floor else f"{p:.3f}")
        ref = paper[paper["method"] == aliases.get(pname, pname)] if pname else paper.iloc[:0]
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
                    for k in np.where(np.isclose(col, np.nanmax(col)))[0]:
                        out.loc[k, f"{split} {met}"] = f"{bold}{out.loc[k, f'{split} {met}']}{bold}"
    return out


def render_markdown(df: pd.DataFrame, suite: str = "table2", protocol: str = "weighted", **kw) -> str:
    t = table_frame(df, suite, protocol, **kw)
    if t.empty:
        return "_no results_\n"
    return tabulate(t, headers="keys", tablefmt="pipe", showindex=False, disable_numparse=True) + "\n"


def _latex_escape(v):
    if not isinstance(v, str):
        return v
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        v = v.replace(a, b)
    return v.replace("±", r"$\pm$").replace("†", r"$^\dagger$")


def render_latex(df: pd.DataFrame, suite: str = "table2", protocol: str = "weighted", **kw) -> str:
    t = table_frame(df, suite, protocol, bold=None, **kw).map(_latex_escape)
    t.columns = [_latex_escape(c) for c in t.columns]
    # latex_raw keeps our $\pm$ (latex_booktabs would escape it); booktabs rules replace its \hline lines
    lines = tabulate(t, headers="keys", tablefmt="latex_raw", showindex=False, disable_numparse=True).splitlines()
    rules = iter([r"\toprule", r"\midrule", r"\bottomrule"])
    return "\n".join(next(rules, line) if line.strip() == r"\hline" else line for line in lines) + "\n"


def protocol_note(df: pd.DataFrame, suite: str = "table2", protocol: str = "weighted") -> str:
    seeds = sorted(df["seed"].unique().tolist()) if len(df) else []
    config = ", ".join(sorted(df["config_set"].dropna().unique())) if "config_set" in df else "?"
    data = ", ".join(sorted(df["data"].dropna().unique())) if "data" in df else "?"
    n = {s: int(df[df["split"] == s]["n_instances"].max()) for s in SPLITS
         if "n_instances" in df and (df["split"] == s).any()}
    table = get_suite(suite)["table"]
    text = PROTOCOL[protocol]
    if protocol == "gated" and "iou_gate" in df and df["iou_gate"].notna().any():  # the gate the runs used
        text = text.replace("IoU < 0.5", f"IoU < {df['iou_gate'].dropna().iloc[0]:g}")
    return (f"Protocol: {text}. mIoU: mean over instances of the key-frame box IoU. All values in "
            f"percent; cells are mean ± std over seeds {seeds}; best of ours per column in bold; the 95% interval "
            f"is a percentile bootstrap over test instances; p is a paired bootstrap test against the best method "
            f"of the table by test mAP (largest p over seeds). Config set: {config}. Data: {data}; instances scored "
            f"per split: {n}. Columns headed 'paper' are the numbers the paper reports on the real RefAVA (its "
            f"Table {table}), for reference only: not comparable with runs on other data or with tiny configs."
            f"{text_path_note(df)}{start_note(df)}")


def start_note(df: pd.DataFrame) -> str:
    """Which starting point each method's rows used: the weights files the ``loaded_weights`` column records (the
    shipped pretrained tiny weights, a published checkpoint) by name and sha256 prefix, or random weights."""
    if "loaded_weights" not in df:
        return ""
    import json

    starts: dict[str, set] = {}
    for method, cell in df[["method", "loaded_weights"]].itertuples(index=False):
        try:
            files = json.loads(cell) if isinstance(cell, str) and cell else []
        except ValueError:
            files = []
        label = ", ".join(f"{Path(f['file']).name} ({f['sha256'][:12]})" for f in files) or "random weights"
        starts.setdefault(label, set()).add(method)
    if set(starts) == {"random weights"}:
        return " Starting point: random weights for every method."
    parts = [f"{', '.join(sorted(ms))}: {label}" for label, ms in sorted(starts.items(), key=lambda x: sorted(x[1]))]
    return " Starting points (file, sha256): " + "; ".join(parts) + "."


def text_path_note(df: pd.DataFrame) -> str:
    """Which Eq. 1 text path the RefAtomNet-family rows ran (``model.text_path``; rows from before it: none)."""
    if "text_path" not in df:
        return ""
    paths = df[df["text_path"].fillna("").astype(str) != ""].groupby("text_path")["method"].unique()
    if paths.empty:
        return ""
    what = {"qformer": "frozen text features -> P_RT -> the trained Q-Former's text side (Eq. 1)",
            "projection": "frozen text features -> P_RT only", "xclip": "XCLIP's frozen text transformer -> P_RT"}
    parts = [f"{what.get(p, p)} [{p}]: {', '.join(sorted(ms))}" for p, ms in paths.items()]
    return " RefAtomNet text path: " + "; ".join(parts) + "."


def bar_chart(df: pd.DataFrame, path: Path, metric: str = "mAP", methods=None) -> Path | None:
    """Bars per method and split; error bars: std over seeds, or the bootstrap 95% interval for one seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = methods if methods is not None else _rows_in_order(df)
    sub = df[df["method"].isin(names)]
    if sub.empty:
        return None
    names = [n for n in names if (sub["method"] == n).any()]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 3.8))
    x = np.arange(len(names))
    for k, split in enumerate(SPLITS):
        g = sub[sub["split"] == split].groupby("method")
        mean = np.array([g[metric].mean().get(n, np.nan) for n in names])
        if sub["seed"].nunique() > 1:
            err = np.array([np.nan_to_num(g[metric].std(ddof=1).get(n, 0.0)) for n in names])
            yerr = np.vstack([err, err])
        elif f"{metric}_ci_lo" in sub:
            lo = np.array([g[f"{metric}_ci_lo"].mean().get(n, np.nan) for n in names])
            hi = np.array([g[f"{metric}_ci_hi"].mean().get(n, np.nan) for n in names])
            yerr = np.nan_to_num(np.vstack([mean - lo, hi - mean]).clip(0))
        else:
            yerr = None
        ax.bar(x + (k - 0.5) * 0.38, mean, 0.38, yerr=yerr, capsize=2, label=split)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel(f"{metric} (%)")
    ax.legend()
    ax.set_title(f"{metric} per method (error bars: " + ("std over seeds)" if sub["seed"].nunique() > 1
                                                        else "bootstrap 95% interval)"))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def costs_table(df: pd.DataFrame, methods: list[str], costs_csv: Path = COSTS_CSV) -> str:
    """Per-method cost: this run's tiny parameters and training throughput (results.csv), beside the full
    configs' parameters and GFLOPs per clip measured by benchmarks/method_throughput.py (when present)."""
    full = pd.read_csv(costs_csv).set_index("method") if costs_csv.is_file() else pd.DataFrame()
    rows = []
    for m in methods:
        r = df[df["method"] == m].iloc[0]
        cps = r.get("train_clips_per_s", np.nan)
        if pd.isna(cps) and all(pd.notna(r.get(c)) for c in ("train_instances", "epochs", "train_time_s")) \
                and r["train_time_s"] > 0:
            cps = r["train_instances"] * r["epochs"] / r["train_time_s"]
        row = {"Method": r["paper_name"] if isinstance(r.get("paper_name"), str) else m,
               "tiny params": f"{int(r['params']):,}" if "params" in r and pd.notna(r["params"]) else "–",
               "tiny train clips/s": "–" if pd.isna(cps) else f"{cps:.0f}"}
        for col, name, fmt in (("full_params_M", "full params (M)", "{:.1f}"),
                               ("full_gflops_per_clip", "full GFLOPs/clip", "{:.1f}")):
            v = full[col].get(m, np.nan) if col in full else np.nan
            row[name] = "–" if pd.isna(v) else fmt.format(v)
        rows.append(row)
    return tabulate(pd.DataFrame(rows), headers="keys", tablefmt="pipe", showindex=False, disable_numparse=True) + "\n"


def write_suite(out_dir: str | Path, suite: str = "table2", command: str = "", protocol: str | None = None,
                extra_md: list[str] | None = None, stability_with: str | Path | None = None,
                config_set: str | None = None, data: str | None = None) -> Path:
    """out_dir/results.csv -> <name>.md / .tex / .csv / _mAP.png (name: leaderboard for table2, else the suite).
    ``protocol`` None: the runs' own ``eval.average``. Rows of several config sets or data never share a table:
    ``config_set`` / ``data`` pick one (run_notes.select_rows)."""
    out_dir = Path(out_dir)
    df, rebuilt = read_results_table(out_dir)  # whole rows that agree with results/*.json, or rebuilt from them
    if rebuilt:
        log.warning(rebuilt)
    df = select_rows(df, config_set, data)
    protocol = headline_protocol(df, protocol)
    spec = get_suite(suite)
    stem = "leaderboard" if suite == "table2" else suite
    methods = None if spec["methods"] == "all" else spec["methods"]
    png = bar_chart(df, out_dir / f"{stem}_mAP.png", "mAP", methods)
    parts = [f"# RAVAR-Bench — {spec['title']}", ""]
    if command:
        parts += [f"Made by: `{command}`", ""]
    parts += [render_markdown(df, suite, protocol), protocol_note(df, suite, protocol), "", *plugin_note(df),
              *run_notes(df)]
    if suite == "table2":
        for fam in ("Ablation", "Fusion", "Backbone"):
            if (df["family"] == fam).any():
                parts += [f"## Also run: {fam} variants", "", render_markdown(df, suite, protocol, families=(fam,))]
    if png:
        parts += [f"![mAP per method]({png.name})", ""]
    if extra_md is None:  # a rebuild from results.csv keeps the pictures the main job drew beside it
        extra_md = [x for name, alt in (("per_class_ap.png", "per-class AP"), ("qualitative.png", "qualitative"))
                    if (out_dir / name).is_file() for x in (f"![{alt}]({name})", "")]
    parts += extra_md
    order = _rows_in_order(df, methods)
    parts += diagnostic_sections(df, out_dir, order, stem)  # factor breakdowns and controls (RefAVA-Synth runs)
    parts += stability_section(out_dir, order, stability_with, stem)  # rank intervals; rho against another run
    if "params" in df and order:
        parts += ["## Cost", "", costs_table(df, order),
                  "tiny: this run's configs on this machine (training clips per second over all epochs); full: the "
                  "published architectures, from `benchmarks/method_costs.csv` (python benchmarks/method_throughput.py; "
                  "FLOPs count a multiply-add as 2; '–' where not countable).", ""]
    md_path = out_dir / f"{stem}.md"
    write_text_atomic(md_path, "\n".join(parts))
    write_text_atomic(out_dir / f"{stem}.tex", render_latex(df, suite, protocol))
    write_text_atomic(out_dir / f"{stem}.csv", table_frame(df, suite, protocol, bold=None).to_csv(index=False))
    return md_path


def write_leaderboard(out_dir: str | Path, command: str = "", protocol: str | None = None, suite: str = "table2",
                      extra_md: list[str] | None = None, stability_with: str | Path | None = None,
                      config_set: str | None = None, data: str | None = None) -> Path:
    return write_suite(out_dir, suite, command, protocol, extra_md, stability_with, config_set=config_set, data=data)
