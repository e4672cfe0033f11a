"""After a run: paired significance against the best method, per-class AP and a qualitative panel."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np

from ..data.ava import class_names
from ..data.frames import FrameLayout, read_frame
from ..engine.results import collect_results, result_path, write_json_atomic
from ..engine.trainer import load_predictions
from ..scoring.metrics import per_class_ap
from ..scoring.stats import paired_bootstrap_p


def _pred_path(out_dir, method, split, seed):
    return Path(out_dir) / "predictions" / f"{method}__{split}__seed{seed}.npz"


def add_significance(out_dir: str | Path, methods: list[str], n_boot: int = 500) -> None:
    """For each (split, seed): the best of ``methods`` by mAP, and every other method's paired-bootstrap
    p-values against it, written into the result JSONs (p = -1 marks the best itself)."""
    df = collect_results(out_dir)
    df = df[df["method"].isin(methods)]
    for (split, seed), g in df.groupby(["split", "seed"]):
        if len(g) < 2:
            continue
        best = g.sort_values("mAP", ascending=False)["method"].iloc[0]
        pb = load_predictions(_pred_path(out_dir, best, split, seed))
        for method in g["method"]:
            rp = result_path(out_dir, method, split, seed)
            row = json.loads(rp.read_text())
            if method == best:
                ps = {"mAP": -1.0, "AUROC": -1.0, "mIoU": -1.0}
            else:
                ps = paired_bootstrap_p(load_predictions(_pred_path(out_dir, method, split, seed)), pb, n_boot, seed)
            row.update({f"p_vs_best_{k}": v for k, v in ps.items()})
            row["best_method"], row["p_n_boot"] = best, n_boot
            write_json_atomic(rp, row)


def per_class_plot(out_dir: str | Path, methods: list[str], split: str = "test", seed: int = 0, top: int = 3):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = collect_results(out_dir)
    df = df[(df["split"] == split) & (df["seed"] == seed) & df["method"].isin(methods)]
    if df.empty:
        return None
    chosen = df.sort_values("mAP", ascending=False)["method"].head(top).tolist()
    aps = {}
    for m in chosen:
        p = load_predictions(_pred_path(out_dir, m, split, seed))
        aps[m] = per_class_ap(p["scores"], p["labels"])
    cols = np.where(np.isfinite(aps[chosen[0]]))[0]
    names = class_names()
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(cols) + 2), 4))
    w = 0.8 / len(chosen)
    for k, m in enumerate(chosen):
        ax.bar(np.arange(len(cols)) + k * w, aps[m][cols], w, label=m)
    ax.set_xticks(np.arange(len(cols)) + 0.4 - w / 2, [names[c][:18] for c in cols], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("AP (%)")
    ax.set_title(f"Per-class AP, {split} split, top {len(chosen)} methods by mAP (classes with positives)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(out_dir) / "per_class_ap.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def qualitative_panel(out_dir: str | Path, source, method: str, split: str = "val", seed: int = 0, n: int = 6,
                      layout: FrameLayout | None = None):
    """Key frames with the sentence, true (green) vs predicted (red) box, and the top predicted actions:
    true positives green, false positives red, missed true actions grey (paper Fig. 4 style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    p = load_predictions(_pred_path(out_dir, method, split, seed))
    by_key = {i.key: i for i in source.splits[split]}
    layout = layout or FrameLayout()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(p["keys"]), size=min(n, len(p["keys"])), replace=False)
    names = class_names()
    cols = 3
    rows = int(np.ceil(len(picks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.4 * rows))
    for ax, k in zip(np.atleast_1d(axes).ravel(), picks):
        inst = by_key[p["keys"][k]]
        img = read_frame(layout.path(source.root / "frames", inst.video_id, layout.key_index(inst.timestamp)))
        h, w = img.shape[1:]
        ax.imshow(img.permute(1, 2, 0).numpy())
        for box, col in ((p["gt_boxes"][k], "lime"), (p["boxes"][k], "red")):
            ax.add_patch(Rectangle((box[0] * w, box[1] * h), (box[2] - box[0]) * w, (box[3] - box[1]) * h,
                                   fill=False, color=col, lw=2))
        true = set(np.where(p["labels"][k] > 0)[0])
        top = list(np.argsort(-p["scores"][k])[: max(3, len(true))])
        lines = [(names[c], "green" if c in true else "red") for c in top] + \
                [(names[c] + " (missed)", "grey") for c in true if c not in top]
        for j, (txt, col) in enumerate(lines):
            ax.text(2, h + 10 + 9 * j, txt, color=col, fontsize=7, va="top")
        ax.set_title("\n".join(textwrap.wrap(f'"{inst.text}"', 40)), fontsize=8)
        ax.set_xlim(0, w)
        ax.set_ylim(h + 12 + 9 * len(lines), 0)
        ax.axis("off")
    for ax in np.atleast_1d(axes).ravel()[len(picks):]:
        ax.axis("off")
    fig.suptitle(f"{method} on {split}: green box = truth, red box = prediction; actions: green TP, red FP, grey missed",
                 fontsize=9)
    fig.tight_layout()
    path = Path(out_dir) / "qualitative.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
