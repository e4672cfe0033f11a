"""results.csv (+ predictions/ and the data root when present) -> one self-contained ``DIR/index.html``.

The page holds its data as one JSON blob; ``assets/page.js`` draws the tables from it and hands Vega-Lite
specs (made here with Altair) to vega-embed, whose bundle (vega + vega-lite + vega-embed, from
``vl_convert.javascript_bundle``) is inlined once: 0.9 MB. Plotly was the other offline candidate, but its
``plotly.min.js`` alone is 4.8 MB, nearly all of the 5 MB the default page may weigh with its images. Vega draws
SVG, which prints sharply and scales down to a phone. The key frames of the qualitative section are read from
the data root at generation time and inlined as small JPEG data URIs; without a data root the section says so.
A Content-Security-Policy without any network source makes the browser itself refuse every request.
"""
from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import logging
import math
import platform
import re
import warnings
from html import escape
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import pandas as pd

from ...data.ava import ava_classes
from ...engine.result_schema import read_results_csv
from ...files.atomic import atomic_write
from ...reference import COSTS_CSV, paper_results
from ...scoring.metrics import box_iou, per_class_ap
from ...suites import suite as get_suite
from ..leaderboard import _PREFIX, METRICS, PROTOCOL, SPLITS, _rows_in_order
from ..run_notes import headline_protocol, select_rows

log = logging.getLogger(__name__)

SIG_LEVEL = 0.05
PEOPLE_BINS = ("p1", "p2", "p3", "p4", "p5+")
GROUPS = ("PM", "OM", "PI")
# columns the page shows in their own sections; every other column is provenance (one value for the whole
# run) or "other columns" (varies by row), so what other tools add to results.csv is shown, never dropped
_KNOWN = re.compile(r"^(method|family|split|seed|paper_name|protocol|(macro_|gated_|rephrase_)?(mIoU|mAP|AUROC)"
                    r"(_ci_lo|_ci_hi|_PM|_OM|_PI)?|n_p.*|mIoU_p.*|mAP_p.*|swap_.*|p_vs_best_.*|best_method|p_n_boot|"
                    r"params|trainable_params|train_clips_per_s|train_time_s|eval_time_s|train_instances|"
                    r"n_instances)$")
THUMB_MAX = (320, 240)
# no network source at all; 'unsafe-eval' because Vega compiles its expressions with Function(), 'unsafe-inline'
# because every script and style is inline (the page is one file)
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data:; font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'")


def _f(v):
    """A JSON-safe float (None for NaN / missing / non-numeric)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else round(v, 4)


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _f(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v if isinstance(v, (str, int, bool)) or v is None else str(v)


def _stat(values) -> dict | None:
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return None
    return {"mean": _f(v.mean()), "std": _f(v.std(ddof=1)) if len(v) > 1 else None, "n": int(len(v))}


def _protocols(df: pd.DataFrame, spec: dict) -> list[dict]:
    if spec.get("value_prefix"):
        p = spec["value_prefix"]
        return [{"id": p.rstrip("_"), "label": p.rstrip("_"), "prefix": p,
                 "note": "mean over the original sentence and its rephrasings (" + PROTOCOL["weighted"] + ")"}]
    out = []
    for pid, prefix in _PREFIX.items():
        if pid == "weighted" or prefix + "mAP" in df.columns:
            out.append({"id": pid, "label": {"weighted": "weighted (authors')", "macro": "macro",
                                             "gated": "IoU-gated"}[pid], "prefix": prefix, "note": PROTOCOL[pid]})
    return out


def _col(prefix: str, met: str) -> str:
    # mIoU does not depend on how classes are averaged, so only the rephrasing suite has its own column
    return prefix + met if (met != "mIoU" or prefix == "rephrase_") else met


def _mean_col(sub: pd.DataFrame, col: str):
    return _f(pd.to_numeric(sub[col], errors="coerce").mean()) if col in sub and sub[col].notna().any() else None


def _method_order(df: pd.DataFrame, spec: dict) -> list[str]:
    if spec["methods"] != "all":
        return [m for m in spec["methods"] if (df["method"] == m).any()]
    order = _rows_in_order(df)
    # variants beyond Table 2 (ablations, fusions, plug-ins) follow the paper's rows, in results.csv order
    return order + [m for m in df["method"].drop_duplicates() if m not in order]


def _method_rows(df: pd.DataFrame, spec: dict, protocols: list[dict], order: list[str]) -> list[dict]:
    paper = paper_results()
    paper = paper[paper["table"] == spec["table"]]
    aliases = spec.get("aliases", {})
    rows = []
    for method in order:
        m = df[df["method"] == method]
        pname = m["paper_name"].dropna().iloc[0] if "paper_name" in m and m["paper_name"].notna().any() else None
        row = {"method": method, "name": str(pname or method), "family": str(m["family"].iloc[0]),
               "seeds": int(m["seed"].nunique()), "seed_list": sorted(int(s) for s in m["seed"].unique()),
               "cells": {}, "sig": {}, "groups": {}}
        for proto in protocols:
            cells = {}
            for split in SPLITS:
                s = m[m["split"] == split]
                for met in METRICS:
                    col = _col(proto["prefix"], met)
                    st = _stat(s[col]) if col in s else None
                    if st:
                        st["lo"], st["hi"] = _mean_col(s, col + "_ci_lo"), _mean_col(s, col + "_ci_hi")
                    cells[f"{split} {met}"] = st
            row["cells"][proto["id"]] = cells
            test = m[m["split"] == "test"]
            pcol = ("" if proto["id"] == "weighted" else proto["prefix"]) + "p_vs_best_mAP"
            if pcol in test and test[pcol].notna().any():
                p = float(test[pcol].max())
                n_boot = _mean_col(test, "p_n_boot")
                row["sig"][proto["id"]] = {"p": p, "best": p < 0, "ns": bool(0 <= p and p >= SIG_LEVEL),
                                           "floor": 2 / n_boot if n_boot else None}
            row["groups"][proto["id"]] = {split: {g: _stat(m[m["split"] == split][proto["prefix"] + "mAP_" + g])
                                                  if proto["prefix"] + "mAP_" + g in m else None for g in GROUPS}
                                          for split in SPLITS}
        ref = paper[paper["method"] == aliases.get(pname, pname)] if pname else paper.iloc[:0]
        row["paper"] = {f"{split} {met}": (_f(ref[f"{split}_{met.lower()}"].iloc[0]) if len(ref) else None)
                        for split in SPLITS for met in METRICS}
        row["people"] = {split: {b: {"n": _mean_col(m[m["split"] == split], "n_" + b),
                                     "mAP": _stat(m[m["split"] == split]["mAP_" + b]) if "mAP_" + b in m else None,
                                     "mIoU": _stat(m[m["split"] == split]["mIoU_" + b]) if "mIoU_" + b in m else None}
                                 for b in PEOPLE_BINS} for split in SPLITS}
        row["swap"] = {split: {k: _mean_col(m[m["split"] == split], "swap_" + k)
                               for k in ("n", "mAP", "mIoU", "AUROC", "drop_mAP", "drop_mIoU", "drop_AUROC")}
                       for split in SPLITS}
        row["cost"] = _cost(m, method)
        rows.append(row)
    return rows


def _cost(m: pd.DataFrame, method: str) -> dict:
    r = m.iloc[0]
    cps = _mean_col(m, "train_clips_per_s")
    if cps is None and all(c in m for c in ("train_instances", "epochs", "train_time_s")):
        t = pd.to_numeric(m["train_time_s"], errors="coerce").mean()
        if t and t > 0:
            cps = _f(float(r["train_instances"]) * float(r["epochs"]) / t)
    out = {"params": _mean_col(m, "params"), "trainable_params": _mean_col(m, "trainable_params"),
           "clips_per_s": cps, "train_time_s": _mean_col(m, "train_time_s"),
           "eval_time_s": _mean_col(m, "eval_time_s"), "epochs": _mean_col(m, "epochs")}
    full = _full_costs()
    for col in ("full_params_M", "full_gflops_per_clip"):
        out[col] = _f(full[col].get(method, np.nan)) if col in full else None
    return out


def _full_costs() -> pd.DataFrame:
    return pd.read_csv(COSTS_CSV).set_index("method") if COSTS_CSV.is_file() else pd.DataFrame()


def _load_pred(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: (z[k].tolist() if k == "keys" else z[k]) for k in z.files}
    except (OSError, ValueError, KeyError) as e:
        log.warning("page: could not read %s (%s); left out", path, e)
        return None


def _pred_path(out_dir: Path, method: str, split: str, seed) -> Path:
    return out_dir / "predictions" / f"{method}__{split}__seed{seed}.npz"


def _per_class(out_dir: Path, df: pd.DataFrame, order: list[str]) -> dict:
    """Per-class test AP (mean over seeds) from predictions/, and each class's number of positives."""
    split = "test" if (df["split"] == "test").any() else "val"
    aps, pos, missing = {}, None, []
    for method in order:
        seeds = sorted(df[(df["method"] == method) & (df["split"] == split)]["seed"].unique())
        per_seed = []
        for seed in seeds:
            p = _load_pred(_pred_path(out_dir, method, split, seed)) if _pred_path(
                out_dir, method, split, seed).is_file() else None
            if p is None:
                continue
            per_seed.append(per_class_ap(p["scores"], p["labels"]))
            if pos is None:
                pos = np.asarray(p["labels"]).sum(0).astype(int).tolist()
        if per_seed:
            with warnings.catch_warnings():  # a class without positives is NaN in every seed: NaN stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                aps[method] = [_f(v) for v in np.nanmean(np.vstack(per_seed), axis=0)]
        else:
            missing.append(method)
    return {"split": split, "ap": aps, "positives": pos, "missing": missing}


def _candidate_roots(df: pd.DataFrame, source_root) -> list[Path]:
    if source_root:
        return [Path(source_root)]
    out = []
    data = df["data"].dropna().astype(str).unique().tolist() if "data" in df else []
    for d in data:  # older rows: "<kind>:<path>"
        kind, _, rest = d.partition(":")
        if rest.startswith("/") or rest.startswith("~"):
            out.append(Path(rest).expanduser())
    gens = df["data_generator"].dropna().astype(str).unique().tolist() if "data_generator" in df else []
    from ...data.synthetic import SynthConfig, default_cache_dir

    for g in gens:  # RefAVA-Synth is regenerated deterministically, so its folder name follows its settings
        mt = re.search(r"seed=(\d+) movies=(\d+)/(\d+)/(\d+) clips=(\d+) q=(\d+)", g)
        if mt:
            s, tr, va, te, cl, q = map(int, mt.groups())
            cfg = SynthConfig(seed=s, train_movies=tr, val_movies=va, test_movies=te, clips_per_movie=cl, quality=q)
            out.append(default_cache_dir() / f"refava_synth_{cfg.digest()}")
    return out


def _thumb(path: Path) -> tuple[str, int, int]:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail(THUMB_MAX)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=72, optimize=True)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(), im.width, im.height


def _qualitative(out_dir: Path, df: pd.DataFrame, order: list[str], source_root, split: str, n: int,
                 method: str | None) -> dict:
    """n instances of ``split`` (the same ones for every method): key-frame thumbnail, sentence, true box and
    actions, and each method's predicted box and top actions."""
    from ...data.frames import FrameLayout
    from ...data.refava import load_split

    names = [c["name"] for c in ava_classes()]
    seed = int(sorted(df["seed"].unique())[0]) if len(df) else 0
    preds = {}
    for m in order:
        path = _pred_path(out_dir, m, split, seed)
        if path.is_file():
            p = _load_pred(path)
            if p is not None:
                preds[m] = p
    if not preds:
        return {"available": False, "reason": f"no predictions/*__{split}__seed{seed}.npz in {out_dir}"}
    common = sorted(set.intersection(*(set(p["keys"]) for p in preds.values())))
    roots = _candidate_roots(df, source_root)
    instances, root, tried = None, None, []
    for r in roots:
        try:
            inst, _ = load_split(r, split)
        except Exception as e:  # a missing or foreign root: try the next candidate, report them all
            tried.append(f"{r} ({type(e).__name__}: {e})"[:300])
            continue
        by_key = {i.key: i for i in inst}
        if set(common) <= set(by_key):
            instances, root = by_key, r
            break
        tried.append(f"{r} (its {split} annotations do not hold the predicted instances)")
    if instances is None:
        why = "no data root given (pass --data-root DIR)" if not tried else "; ".join(tried)
        return {"available": False, "reason": f"frames not available: {why}"}
    layout = FrameLayout()
    rng = np.random.default_rng(seed)
    picks = [common[k] for k in sorted(rng.choice(len(common), size=min(n, len(common)), replace=False))]
    examples, skipped = [], []
    for key in picks:
        inst = instances[key]
        path = layout.path(Path(root) / "frames", inst.video_id, layout.key_index(inst.timestamp))
        try:
            uri, w, h = _thumb(path)
        except OSError as e:
            skipped.append(f"{key}: {e}")
            continue
        ex = {"key": key, "text": inst.text, "img": uri, "w": w, "h": h, "gt_box": [_f(v) for v in inst.box],
              "true": [names[a - 1] for a in inst.actions], "pred": {}}
        for m, p in preds.items():
            k = p["keys"].index(key)
            scores = np.asarray(p["scores"][k], dtype=float)
            truth = set(np.where(np.asarray(p["labels"][k]) > 0)[0])
            top = [int(c) for c in np.argsort(-scores)[: max(3, len(truth))]]
            iou = float(box_iou(np.asarray(p["boxes"][k])[None], np.asarray(p["gt_boxes"][k])[None])[0])
            ex["pred"][m] = {"box": [_f(v) for v in p["boxes"][k]], "iou": _f(100 * iou),
                             "top": [{"name": names[c], "score": _f(scores[c]), "true": c in truth} for c in top],
                             "missed": [names[c] for c in sorted(truth) if c not in top]}
        examples.append(ex)
    if not examples:
        return {"available": False, "reason": "frames not available: " + "; ".join(skipped[:3])}
    val = df[(df["split"] == split) & df["method"].isin(preds)]
    default = method if method in preds else (val.sort_values("mAP", ascending=False)["method"].iloc[0]
                                               if len(val) and "mAP" in val else next(iter(preds)))
    return {"available": True, "split": split, "seed": seed, "root": str(root), "examples": examples,
            "methods": [m for m in order if m in preds], "default": default, "skipped": skipped}


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("ravar-bench", "torch", "numpy", "pandas", "altair", "vl-convert-python"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _provenance_columns() -> list[str]:
    try:  # the engine's list when it has one; the page must still build from an older results.csv
        from ...engine.provenance import PROVENANCE_COLUMNS
    except ImportError:
        PROVENANCE_COLUMNS = []
    return ["config_set", "epochs", "origin", *PROVENANCE_COLUMNS]


def recorded_command(out_dir: str | Path, suite: str = "table2") -> str:
    """The command that made the results, as the folder's Markdown leaderboard records it ("" if it does not)."""
    md = Path(out_dir) / f"{'leaderboard' if suite == 'table2' else suite}.md"
    mt = re.search(r"^Made by: `(.+)`$", md.read_text(), flags=re.M) if md.is_file() else None
    return mt.group(1) if mt else ""


def _provenance(out_dir: Path, df: pd.DataFrame, command: str, suite: str) -> dict:
    command = command or recorded_command(out_dir, suite)
    const, varying = {}, []
    for c in df.columns:
        if _KNOWN.match(c):
            continue
        vals = df[c].dropna().astype(str).unique()
        if c in _provenance_columns() and len(vals) <= 1:
            const[c] = vals[0] if len(vals) else "–"
        else:  # diagnostics and the like, or provenance that differs between rows: shown row by row
            varying.append(c)
    n = {s: int(pd.to_numeric(df[df["split"] == s]["n_instances"], errors="coerce").max())
         for s in SPLITS if "n_instances" in df and (df["split"] == s).any()}
    return {"command": command or "(not recorded)", "seeds": sorted(int(s) for s in df["seed"].unique()),
            "results_csv_modified": _dt.datetime.fromtimestamp((out_dir / "results.csv").stat().st_mtime,
                                                               _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "page_generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "page_built_with": _versions(), "run": const, "n_instances": n, "varying_columns": varying}


def _other_columns(df: pd.DataFrame, cols: list[str], order: list[str]) -> list[dict]:
    out = []
    for m in order:
        for _, r in df[df["method"] == m].iterrows():
            out.append({"method": m, "split": r["split"], "seed": int(r["seed"]),
                        **{c: _plain(r[c]) for c in cols}})
    return out


def _specs() -> dict:
    """Vega-Lite specs (data supplied by the page as the named data set ``rows``)."""
    import altair as alt

    rows = alt.Data(name="rows")
    splits = list(SPLITS)
    fit = alt.AutoSizeParams(type="fit-x", contains="padding")  # container width, height from the rows
    tip = [alt.Tooltip("name:N", title="method"), alt.Tooltip("split:N"), alt.Tooltip("label:N", title="value")]
    base = alt.Chart(rows).encode(
        y=alt.Y("name:N", sort=None, title=None),
        yOffset=alt.YOffset("split:N", sort=["val", "test"]))
    interval = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("lo:Q", title=None, scale=alt.Scale(zero=False)), x2="hi:Q",
        # the same title and domain as shape and colour: one merged legend (legend=None here would hide it)
        strokeDash=alt.StrokeDash("split:N", title="split", scale=alt.Scale(domain=splits, range=[[1, 0], [4, 2]])),
        tooltip=tip)
    dots = base.mark_point(filled=True, size=70, opacity=1).encode(
        # scale domains, not sort: Vega-Lite merges the shape and colour legends only then
        x="value:Q", shape=alt.Shape("split:N", title="split", scale=alt.Scale(domain=splits, range=["circle", "square"])),
        color=alt.Color("split:N", title="split", scale=alt.Scale(domain=splits, range=["#1f77b4", "#d62728"])),
        tooltip=tip)
    dot_interval = (interval + dots).properties(width="container", height={"step": 11})

    group = alt.Chart(alt.Data(name="rows")).mark_point(filled=True, size=70, opacity=1).encode(
        y=alt.Y("name:N", sort=None, title=None), yOffset=alt.YOffset("group:N", sort=list(GROUPS)),
        x=alt.X("value:Q", title="test mAP by action group (%)", scale=alt.Scale(zero=False)),
        shape=alt.Shape("group:N", title="group", scale=alt.Scale(domain=list(GROUPS))),
        color=alt.Color("group:N", title="group", scale=alt.Scale(domain=list(GROUPS))),
        tooltip=[alt.Tooltip("name:N", title="method"), "group:N", alt.Tooltip("label:N", title="mAP")],
    ).properties(width="container", height={"step": 8})

    # a dot per (method, number of people): 17 crossing lines would be unreadable, 5 shapes are not
    bins = [b.replace("p", "") for b in PEOPLE_BINS]
    people = alt.Chart(alt.Data(name="rows")).mark_point(filled=True, size=60, opacity=1).encode(
        y=alt.Y("name:N", sort=None, title=None), yOffset=alt.YOffset("bin:N", sort=bins),
        x=alt.X("value:Q", title="test mAP by the number of people in the clip (%)", scale=alt.Scale(zero=False)),
        shape=alt.Shape("bin:N", title="people", scale=alt.Scale(domain=bins)),
        color=alt.Color("bin:N", title="people", scale=alt.Scale(domain=bins)),
        tooltip=[alt.Tooltip("name:N", title="method"), alt.Tooltip("bin:N", title="people"),
                 alt.Tooltip("label:N", title="mAP")],
    ).properties(width="container", height={"step": 6})

    swap = alt.Chart(alt.Data(name="rows")).mark_bar().encode(
        y=alt.Y("name:N", sort=None, title=None),
        x=alt.X("value:Q", title="drop when the sentence is swapped (points)"),
        yOffset=alt.YOffset("metric:N", sort=["mAP", "mIoU"]),
        color=alt.Color("metric:N", title="metric", scale=alt.Scale(domain=["mAP", "mIoU"])),
        tooltip=[alt.Tooltip("name:N", title="method"), "metric:N", alt.Tooltip("label:N", title="drop")],
    ).properties(width="container", height={"step": 10})
    # the metric's name beside each bar: the two bars of a method are told apart without their colour
    swap = swap + alt.Chart(alt.Data(name="rows")).mark_text(align="left", dx=3, fontSize=9).encode(
        y=alt.Y("name:N", sort=None), yOffset=alt.YOffset("metric:N", sort=["mAP", "mIoU"]), x="tx:Q", text="tag:N")
    swap = swap + alt.Chart(alt.Data(name="zero")).mark_rule(color="black").encode(x="x:Q")

    scatter_base = alt.Chart(alt.Data(name="rows")).encode(
        x=alt.X("speed:Q", scale=alt.Scale(type="log"), title="training throughput, this run (clips/s, log)"),
        y=alt.Y("value:Q", title="test mAP (%)", scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("name:N", title="method"), alt.Tooltip("family:N"),
                 alt.Tooltip("speed:Q", format=".0f", title="clips/s"), alt.Tooltip("label:N", title="test mAP")])
    scatter = (scatter_base.mark_point(filled=True, size=80).encode(shape=alt.Shape("family:N"),
                                                                     color=alt.Color("family:N"))
               + scatter_base.mark_text(align="left", dx=7, dy=-4, fontSize=10).encode(text="name:N")
               ).properties(width="container", height=320)
    out = {"dot_interval": dot_interval, "groups": group, "people": people, "swap": swap, "scatter": scatter}
    return {k: v.properties(autosize=fit).to_dict() for k, v in out.items()}


def _colormap(name: str = "viridis", n: int = 11) -> list[str]:
    """Stops of a perceptually uniform matplotlib colour map for the heat map (the page interpolates between
    them): the inlined Vega bundle does not expose its own colour schemes to page scripts."""
    import matplotlib

    rgb = matplotlib.colormaps[name](np.linspace(0, 1, n))[:, :3]
    return ["#%02x%02x%02x" % tuple(int(round(255 * c)) for c in row) for row in rgb]


def page_data(out_dir: str | Path, suite: str = "table2", source_root=None, command: str = "",
              qualitative_split: str = "val", n_examples: int = 12, qualitative_method: str | None = None,
              config_set: str | None = None, data: str | None = None, protocol: str | None = None) -> dict:
    """Everything the page shows, as plain JSON-able values. ``config_set`` / ``data`` pick the rows when
    results.csv holds several (as the Markdown leaderboard does); ``protocol``: the one shown first."""
    out_dir = Path(out_dir)
    csv = out_dir / "results.csv"
    if not csv.is_file():
        raise FileNotFoundError(f"{csv} not found: the page is made from a run folder's results.csv")
    df = read_results_csv(csv)
    missing = [c for c in ("method", "family", "split", "seed", "mAP") if c not in df.columns]
    if missing:
        raise ValueError(f"{csv}: missing column(s) {', '.join(missing)}")
    df = select_rows(df, config_set, data)  # rows of several config sets or data never share a table
    spec = get_suite(suite)
    order = _method_order(df, spec)
    if not order:
        raise ValueError(f"{csv}: none of suite {suite}'s methods has a row")
    df = df[df["method"].isin(order)]
    protocols = _protocols(df, spec)
    first = headline_protocol(df, protocol) if not spec.get("value_prefix") else protocols[0]["id"]
    prov = _provenance(out_dir, df, command, suite)
    rows = _method_rows(df, spec, protocols, order)
    return {
        "suite": suite, "title": spec["title"], "paper_table": spec["table"],
        "protocols": protocols, "default_protocol": first, "metrics": list(METRICS), "splits": list(SPLITS), "sig_level": SIG_LEVEL,
        "people_bins": list(PEOPLE_BINS), "groups": list(GROUPS),
        "rows": rows, "families": list(dict.fromkeys(r["family"] for r in rows)),
        "classes": [{"id": c["id"], "name": c["name"], "group": c["group"]} for c in ava_classes()],
        "per_class": _per_class(out_dir, df, order),
        "qualitative": _qualitative(out_dir, df, order, source_root, qualitative_split, n_examples,
                                    qualitative_method),
        "provenance": prov,
        "other_columns": {"columns": prov["varying_columns"],
                          "rows": _other_columns(df, prov["varying_columns"], order)},
        "specs": _specs(),
        "colormap": _colormap(),
    }


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _script_json(obj) -> str:
    # inside <script>, "</" would end the element early; "\u003c" keeps the JSON identical once parsed
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")


def render_html(data: dict) -> str:
    import altair as alt
    import vl_convert as vlc

    vl_version = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]
    bundle = vlc.javascript_bundle(vl_version=vl_version).replace("</script", "<\\/script")
    html = _asset("page.html")
    parts = {"/*@CSP@*/": CSP, "/*@TITLE@*/": escape(f"RAVAR-Bench — {data['title']}"), "/*@CSS@*/": _asset("page.css"),
             "/*@VEGA@*/": bundle, "/*@DATA@*/": _script_json(data), "/*@JS@*/": _asset("page.js")}
    for k in parts:
        if k not in html:
            raise RuntimeError(f"page template lacks the {k} marker")
    # one pass over the template: a marker-like text inside the data or the bundle is never replaced
    return re.sub(r"/\*@[A-Z]+@\*/", lambda mt: parts[mt.group(0)], html)


def write_html(out_dir: str | Path, suite: str = "table2", source_root=None, command: str = "",
               qualitative_split: str = "val", n_examples: int = 12, qualitative_method: str | None = None,
               config_set: str | None = None, data: str | None = None, protocol: str | None = None) -> Path:
    """Write ``out_dir/index.html`` from ``out_dir/results.csv`` (+ predictions/ and the data root if given or
    found) and return its path."""
    page = page_data(out_dir, suite, source_root, command, qualitative_split, n_examples, qualitative_method,
                     config_set, data, protocol)
    path = Path(out_dir) / "index.html"
    html = render_html(page)
    atomic_write(path, lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))
    return path
