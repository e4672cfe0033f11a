"""The leaderboard's diagnostic sections: results.csv's factor breakdowns and control columns as tables + a plot.

The columns come from engine/diagnostics.py (RefAVA-Synth's factors.json); a run without them (real
RefAVA) gets no section. Values are the test split's, mean over training seeds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

ACTION_TYPES = ("static", "motion", "object", "interaction")
# (column, header) of the breakdown table; the header gets the number of instances from its n_ column
BREAKDOWN = [
    ("mIoU_p1", "mIoU alone in clip", "n_p1"),
    ("mIoU_colour_shared", "mIoU shirt colour shared", "n_colour_shared"),
    ("mIoU_colour_distinct", "mIoU shirt colour unique", "n_colour_distinct"),
    ("mIoU_ref_appearance", "mIoU ref: appearance", "n_ref_appearance"),
    ("mIoU_ref_position", "mIoU ref: position", "n_ref_position"),
    ("mIoU_ref_both", "mIoU ref: both", "n_ref_both"),
] + [(f"mAP_act_{t}", f"mAP {t} classes", None) for t in ACTION_TYPES]
CONTROLS = [("swap_drop_mIoU", "swap: mIoU drop"), ("nopos_drop_mIoU", "no position words: mIoU drop"),
            ("static_drop_mAP", "static clip: mAP drop")] + \
           [(f"static_drop_mAP_act_{t}", f"static clip: {t} mAP drop") for t in ACTION_TYPES]


def _test_means(df: pd.DataFrame, methods: list[str], cols: list[str]) -> pd.DataFrame:
    t = df[(df["split"] == "test") & df["method"].isin(methods)]
    have = [c for c in cols if c in t]
    return t.groupby("method")[have].mean().reindex(methods) if have else pd.DataFrame(index=methods)


def _fmt(v) -> str:
    return "–" if pd.isna(v) else f"{v:.1f}"


def _names(df: pd.DataFrame) -> dict:
    pn = df["paper_name"] if "paper_name" in df else df["method"]
    return {m: (p if isinstance(p, str) else m) for m, p in zip(df["method"], pn)}


def _table(vals: pd.DataFrame, spec, names: dict, counts: dict) -> str:
    rows = []
    for m, r in vals.iterrows():
        row = {"Method": names.get(m, m)}
        for col, head, *_ in spec:
            if col in vals:
                row[head + (f" (n={counts[col]})" if counts.get(col) else "")] = _fmt(r[col])
        rows.append(row)
    return tabulate(pd.DataFrame(rows), headers="keys", tablefmt="pipe", showindex=False, disable_numparse=True)


def diagnostics_plot(vals: pd.DataFrame, ctrl: pd.DataFrame, names: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("test mIoU by factor (%)", vals, [c for c, *_ in BREAKDOWN if c.startswith("mIoU") and c in vals], "viridis"),
              ("test mAP by action type (%)", vals, [c for c, *_ in BREAKDOWN if c.startswith("mAP") and c in vals], "viridis"),
              ("control drops (points)", ctrl, [c for c, _ in CONTROLS if c in ctrl], "coolwarm")]
    panels = [p for p in panels if p[2]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1.5, 0.3 * len(vals) + 2.6),
                             squeeze=False)
    for ax, (title, frame, cols, cmap) in zip(axes[0], panels):
        a = frame[cols].to_numpy(dtype=float)
        if cmap == "coolwarm":  # drops centred on zero: blue = the control raised the score
            lim = np.nanmax(np.abs(a)) if np.isfinite(a).any() else 1.0
            im = ax.imshow(a, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
        else:
            im = ax.imshow(a, cmap=cmap, aspect="auto")
        for (i, j), v in np.ndenumerate(a):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="w" if cmap != "coolwarm" else "k")
        ax.set_xticks(range(len(cols)), [c.replace("static_drop_", "static ").replace("_drop_", " ")
                                         .replace("mIoU_", "").replace("mAP_act_", "").replace("mAP_", "")
                                         for c in cols], rotation=50, ha="right", fontsize=7)
        ax.set_yticks(range(len(frame)), [names.get(m, m) for m in frame.index], fontsize=7)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def diagnostic_sections(df: pd.DataFrame, out_dir, methods: list[str], stem: str = "leaderboard") -> list[str]:
    """Markdown lines of the ``Diagnostics`` section; [] when results.csv has no factor columns."""
    if "mIoU_colour_shared" not in df and "mAP_act_static" not in df:
        return []
    vals = _test_means(df, methods, [c for c, *_ in BREAKDOWN])
    ctrl = _test_means(df, methods, [c for c, _ in CONTROLS] + ["nopos_n"])
    test = df[df["split"] == "test"]
    counts = {c: int(test[n].max()) for c, _, n in BREAKDOWN if n and n in test and test[n].notna().any()}
    if "nopos_n" in test and test["nopos_n"].notna().any():
        counts["nopos_drop_mIoU"] = int(test["nopos_n"].max())
    if "swap_n" in test and test["swap_n"].notna().any():
        counts["swap_drop_mIoU"] = int(test["swap_n"].max())
    names = _names(df)
    png = diagnostics_plot(vals, ctrl, names, Path(out_dir) / f"{stem}_diagnostics.png")
    return ["## Diagnostics by generator factor (test split)", "",
            "Each instance's factors are recorded by the RefAVA-Synth generator (`factors.json`, never shown to a "
            "method). mIoU over the instances of each group (n); mAP of a type: over the classes of that action type "
            "(static pose, motion needing several frames, object, interaction), all instances.", "",
            _table(vals, BREAKDOWN, names, counts), "",
            "### Construct-validity controls (not methods)", "",
            "Drops are original minus control, in points, on the test split. swap: every sentence replaced by another "
            "person's of the same clip. no position words: on the instances whose shirt colour another person of "
            "the clip shares, the sentence without its position and size words (a method that uses them loses "
            "mIoU). static clip: every frame replaced by the key frame (motion classes should drop; '–': the "
            "method reads no clip).", "",
            _table(ctrl, CONTROLS, names, counts), "",
            f"![diagnostics]({png.name})", ""]
