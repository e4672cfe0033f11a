"""How stable a leaderboard's order is: bootstrap rank intervals in one run, Spearman's rho between two runs.

Rank intervals (as arena-style leaderboards show them): the test instances are resampled with replacement,
the SAME resample for every method (their predictions are paired by instance key), every method is scored
on it and the methods are ranked (1 = best; ties share the better rank); a method's interval is the 2.5 and
97.5 percentiles of its ranks over the resamples. A method whose interval is [1, 1] is best on every
resample; two methods whose intervals overlap are not told apart by this test set.

Between two runs (for example two data seeds, ``--synth-seed 0`` and ``1``), Spearman's rho of the two
test rankings (scipy.stats.spearmanr) says whether the order is a property of the methods or of the draw.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr
from tabulate import tabulate

from ..errors import ResultsError
from .metrics import evaluate

# what rank_intervals reads of a predictions/*.npz (the trainer writes more)
PREDICTION_KEYS = ("keys", "scores", "labels", "boxes", "gt_boxes")

RANK_METRICS = ("mAP", "mIoU")
# families ranked: the methods of the tables, not the chance control (its place is known: last)
NOT_RANKED = ("Control",)


def spearman(a: dict, b: dict) -> dict:
    """Spearman's rho between two {method: value} mappings over their common methods (higher = better)."""
    common = sorted(set(a) & set(b))
    if len(common) < 3:
        return {"rho": float("nan"), "p": float("nan"), "n": len(common)}
    res = spearmanr([a[m] for m in common], [b[m] for m in common])
    return {"rho": float(res.statistic), "p": float(res.pvalue), "n": len(common)}


def _aligned(preds: dict) -> dict:
    """The methods' predictions restricted to the instance keys all of them scored, in one order."""
    common = sorted(set.intersection(*(set(p["keys"]) for p in preds.values())))
    if not common:
        raise ValueError("the methods' prediction files share no instance keys")
    out = {}
    for m, p in preds.items():
        pos = {k: i for i, k in enumerate(p["keys"])}
        idx = np.array([pos[k] for k in common])
        out[m] = {k: np.asarray(v)[idx] for k, v in p.items() if k != "keys"}
    return out


def rank_intervals(preds: dict, n_boot: int = 500, seed: int = 0, level: float = 0.95,
                   metrics=RANK_METRICS) -> pd.DataFrame:
    """One row per method: each metric's value on all instances, its rank, and the bootstrap rank interval.

    ``preds``: method -> predictions dict (keys, scores, labels, boxes, gt_boxes), e.g. predictions/*.npz.
    """
    if len(preds) < 2:
        raise ValueError(f"rank intervals need at least 2 methods, got {len(preds)}")
    al = _aligned(preds)
    methods = list(al)
    n = len(next(iter(al.values()))["scores"])
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))

    def score(p, rows=None):
        sel = (lambda v: v) if rows is None else (lambda v: v[rows])
        return evaluate(sel(p["scores"]), sel(p["labels"]), sel(p["boxes"]), sel(p["gt_boxes"]))

    full = {m: score(al[m]) for m in methods}
    boot = {met: np.empty((n_boot, len(methods))) for met in metrics}
    for b, rows in enumerate(idx):
        for j, m in enumerate(methods):
            r = score(al[m], rows)
            for met in metrics:
                boot[met][b, j] = r[met]
    a = (1 - level) / 2 * 100
    out = pd.DataFrame({"method": methods})
    for met in metrics:
        vals = np.array([full[m][met] for m in methods])
        out[met] = vals
        out[f"{met}_rank"] = rankdata(-vals, method="min").astype(int)
        # NaN (a resample without positives) ranks last; rare at test-set sizes
        ranks = np.vstack([rankdata(-np.nan_to_num(v, nan=-np.inf), method="min") for v in boot[met]])
        out[f"{met}_rank_lo"] = np.percentile(ranks, a, axis=0, method="lower").astype(int)
        out[f"{met}_rank_hi"] = np.percentile(ranks, 100 - a, axis=0, method="higher").astype(int)
    out.attrs.update(n_boot=n_boot, n_instances=n, level=level)
    return out


def _load_npz(path: Path) -> dict:
    """A predictions file, or one line naming it: no rank interval from a damaged file (there is no copy to
    rebuild it from, as results.csv has in results/*.json)."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: (z[k].tolist() if k == "keys" else z[k]) for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ResultsError(f"{path}: not a complete predictions file ({type(e).__name__}: {e}); re-run the "
                           f"method with --force, or move the file away to rank without it") from None
    missing = [k for k in PREDICTION_KEYS if k not in out]
    if missing:
        raise ResultsError(f"{path}: predictions file lacks '{missing[0]}' (holds {', '.join(out) or 'nothing'}); "
                           f"re-run the method with --force, or move the file away to rank without it")
    return out


def ranked_methods(df: pd.DataFrame, methods=None) -> list[str]:
    """The methods of results.csv to rank (``methods`` if given), without the controls."""
    sub = df[~df["family"].isin(NOT_RANKED)] if "family" in df else df
    names = list(dict.fromkeys(sub["method"]))
    return [m for m in (methods or names) if m in names]


def run_rank_intervals(out_dir, methods=None, split: str = "test", n_boot: int = 500, seed: int | None = None):
    """Rank intervals of a run folder from its results.csv and predictions/*.npz (first training seed);
    None when fewer than 2 methods have predictions."""
    out_dir = Path(out_dir)
    df = pd.read_csv(out_dir / "results.csv")
    if df.empty:
        return None
    seed = int(df["seed"].min()) if seed is None else seed
    preds = {}
    for m in ranked_methods(df, methods):
        p = out_dir / "predictions" / f"{m}__{split}__seed{seed}.npz"
        if p.is_file():
            preds[m] = _load_npz(p)
    return rank_intervals(preds, n_boot=n_boot) if len(preds) >= 2 else None


def ranking_values(out_dir, metric: str, methods=None) -> dict:
    """method -> test value of ``metric`` (mean over training seeds) from a run folder's results.csv."""
    df = pd.read_csv(Path(out_dir) / "results.csv")
    df = df[(df["split"] == "test") & df["method"].isin(ranked_methods(df, methods))]
    return df.groupby("method")[metric].mean().dropna().to_dict()


def compare_runs(dir_a, dir_b, methods=None) -> dict:
    """metric -> Spearman's rho (and p, n) between two run folders' test rankings."""
    return {m: spearman(ranking_values(dir_a, m, methods), ranking_values(dir_b, m, methods)) for m in RANK_METRICS}


def rank_plot(ranks: pd.DataFrame, path: Path, names: dict | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = names or {}
    fig, axes = plt.subplots(1, len(RANK_METRICS), figsize=(5 * len(RANK_METRICS), 0.32 * len(ranks) + 1.6))
    for ax, met in zip(np.atleast_1d(axes), RANK_METRICS):
        r = ranks.sort_values(f"{met}_rank", kind="stable").reset_index(drop=True)
        y = np.arange(len(r))
        ax.errorbar(r[f"{met}_rank"], y, xerr=[r[f"{met}_rank"] - r[f"{met}_rank_lo"],
                                               r[f"{met}_rank_hi"] - r[f"{met}_rank"]],
                    fmt="o", capsize=3)
        ax.set_yticks(y, [names.get(m, m) for m in r["method"]], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0.5, len(r) + 0.5)
        ax.set_xlabel(f"rank by test {met} (1 = best)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Rank and {int(100 * ranks.attrs.get('level', 0.95))}% bootstrap rank interval "
                 f"({ranks.attrs.get('n_boot', '?')} resamples of {ranks.attrs.get('n_instances', '?')} test instances)",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def stability_section(out_dir, methods=None, other_dir=None, stem: str = "leaderboard",
                      n_boot: int = 500) -> list[str]:
    """Markdown lines of the leaderboard's ``Stability`` section (and its plot beside the leaderboard)."""
    out_dir = Path(out_dir)
    ranks = run_rank_intervals(out_dir, methods, n_boot=n_boot)
    comp = compare_runs(out_dir, other_dir, methods) if other_dir is not None else None
    if ranks is None and comp is None:
        return []
    df = pd.read_csv(out_dir / "results.csv")
    names = {m: (p if isinstance(p, str) else m) for m, p in
             zip(df["method"], df["paper_name"] if "paper_name" in df else df["method"])}
    lines = ["## Stability of the ranking", ""]
    if ranks is not None:
        rows = []
        for _, r in ranks.sort_values("mAP_rank", kind="stable").iterrows():
            row = {"Method": names.get(r["method"], r["method"])}
            for met in RANK_METRICS:
                row[f"test {met}"] = f"{r[met]:.2f}"
                row[f"{met} rank"] = str(r[f"{met}_rank"])
                row[f"{met} rank 95% interval"] = f"[{r[f'{met}_rank_lo']}, {r[f'{met}_rank_hi']}]"
            rows.append(row)
        png = rank_plot(ranks, out_dir / f"{stem}_ranks.png", names)
        lines += [tabulate(pd.DataFrame(rows), headers="keys", tablefmt="pipe", showindex=False,
                           disable_numparse=True), "",
                  f"Rank 1 = best. Interval: 2.5 and 97.5 percentiles of the method's rank over "
                  f"{ranks.attrs['n_boot']} bootstrap resamples of the {ranks.attrs['n_instances']} test instances, "
                  f"one resample shared by all methods (controls not ranked). Overlapping intervals: this test set "
                  f"does not order those methods.", "", f"![rank intervals]({png.name})", ""]
    if comp is not None:
        lines += [f"Between this run and `{other_dir}` (another run, e.g. another data seed), "
                  f"Spearman's rho of the test rankings:", ""]
        lines += [f"- test {m}: rho = {c['rho']:.2f} (p = {c['p']:.3g}, {c['n']} methods)" for m, c in comp.items()]
        lines += [""]
    return lines
