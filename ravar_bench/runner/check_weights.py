"""``ravar-bench check-weights``: every weights file the configs name, loaded as a run would load it, before any run.

Per method: each configured file (:func:`~ravar_bench.runner.preflight.configured_files`), the layout it was read
as, how many of the module's tensors it set, and OK or the one-line refusal (the strict loader's
:class:`~ravar_bench.encoders.checkpoint.CheckpointError`). The models are built on the meta device, so that
checking ViT-g needs no memory; a method whose file cannot be loaded onto meta tensors (transformers'
``from_pretrained`` folders) is built on the CPU instead, said in its row, when it is small enough
(``CPU_FALLBACK_GIB``); a larger one is its row's error naming ``--device cpu``.
"""
from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

from ..config import check_option_keys, known_keys, load_config
from ..encoders.checkpoint import CheckpointError
from ..errors import UsageError
from ..factory import build_from_config
from ..registry import METHODS
from .preflight import configured_files, missing_files

log = logging.getLogger(__name__)

RANDOM_INIT = "no file configured (random init)"


def options_for(methods: list[str], config_set: str, cfg_options: dict) -> dict[str, dict]:
    """Per method, the options its config reads: a weights key of one method (model.clip.pretrained) is given to
    the methods that have it and left out of the others; a key no selected method reads is a typo (UsageError)."""
    out = {name: {} for name in methods}
    for key, value in (cfg_options or {}).items():
        first_error = None
        for name in methods:
            cls = METHODS.get(name)
            try:
                check_option_keys({key: value}, known_keys(load_config(name, config_set), cls), cls)
            except UsageError as e:
                first_error = first_error or e
                continue
            out[name][key] = value
        if methods and not any(key in o for o in out.values()):
            raise first_error
    return out


def _rows_of(records: list[dict], key: str, path: str) -> list[dict]:
    """The load records of one configured file or folder (a folder: every file read inside it)."""
    p = Path(path).expanduser().resolve()
    mine = [r for r in records if Path(r["file"]) == p or p in Path(r["file"]).parents]
    if not mine:  # read by the library (from_pretrained) or the method's own loader: loaded, tensors not counted
        return [{"key": key, "file": str(path), "layout": "read by the library's own loader (tensors not counted)",
                 "set": None, "total": None, "status": "OK"}]
    return [{"key": key, "file": r["file"], "layout": r["layout"], "set": r["set"], "total": r["total"],
             "status": "OK"} for r in mine]


def _failed(res: dict, files, what: str, e: BaseException) -> dict:
    """The method's rows for a load that failed: the one-line error against the file it names (or every file)."""
    line = " ".join(str(e).split()) or type(e).__name__
    blamed = [(k, p) for k, p in files if str(Path(p).expanduser()) in line] or files
    res["ok"] = False
    res["rows"] = [{"key": k, "file": p, "layout": "", "set": None, "total": None, "status": f"{what}: {line}"}
                   for k, p in blamed]
    return res


# the largest model (GiB of fp32 parameters) loaded on the CPU when the meta device cannot take its files
CPU_FALLBACK_GIB = 8.0


def _cpu_gib(cfg) -> float:
    """The parameters' size in GiB (fp32) of the config's model, counted on the meta device without its files."""
    bare = copy.deepcopy(cfg)
    for key, _ in configured_files(dict(bare.model)):
        node = bare
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = None
    try:
        model = _build(bare, "meta")
    except Exception:  # noqa: BLE001 - unknown size: treat as too large to load unasked
        return float("inf")
    return sum(p.numel() for p in model.parameters()) * 4 / 2 ** 30


def _build(cfg, device: str):
    with warnings.catch_warnings():  # torch's note on loading real tensors into meta parameters: expected here
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter.*")
        return build_from_config(cfg, device=device)


def check_method(name: str, config_set: str, cfg_options: dict, device: str = "meta") -> dict:
    """{"method", "rows": [{key, file, layout, set, total, status}], "ok", "note"} for one method."""
    cfg = load_config(name, config_set, cfg_options)
    files = configured_files(dict(cfg.model))
    res = {"method": name, "rows": [], "ok": True, "note": "", "text_encoder": []}
    res["text_encoder"] = [p for p in missing_files(cfg) if p.startswith("text_encoder.")]
    if not files:
        res["note"] = RANDOM_INIT
        return res
    missing = [(k, p) for k, p in files if not Path(p).expanduser().exists()]
    if missing:
        res["ok"] = False
        res["rows"] = [{"key": k, "file": p, "layout": "", "set": None, "total": None,
                        "status": "MISSING: no such file or folder"} for k, p in missing]
        return res
    try:
        model = _build(cfg, device)
    except CheckpointError as e:  # the strict loader's refusal (wrong model or layout, a tensor of another shape)
        return _failed(res, files, "REFUSED", e)
    except Exception as e:  # noqa: BLE001 - a library that cannot load into meta tensors: load it for real
        if device != "meta":
            return _failed(res, files, "ERROR", e)
        gib = _cpu_gib(cfg)
        if gib > CPU_FALLBACK_GIB:  # a 13B LLM is not loaded into memory unasked
            return _failed(res, files, "ERROR", RuntimeError(
                f"cannot be loaded on the meta device ({' '.join(str(e).split())}); on the CPU it would take "
                f"~{gib:.0f} GiB: run check-weights --device cpu --methods {name} to load it there"))
        log.info("%s: cannot be loaded on the meta device (%s); building it on the CPU", name, e)
        try:
            model = _build(cfg, "cpu")
        except CheckpointError as e2:
            return _failed(res, files, "REFUSED", e2)
        except Exception as e2:  # noqa: BLE001 - reported in the method's row, the other methods still checked
            return _failed(res, files, "ERROR", e2)
        res["note"] = "built on the CPU (the meta device cannot load it)"
    records = model.loaded_weights
    for key, path in files:
        res["rows"] += _rows_of(records, key, path)
    return res


def check_weights(methods: list[str], config_set: str, cfg_options: dict | None, device: str = "meta") -> list[dict]:
    """:func:`check_method` for each method, each given the options its config reads (:func:`options_for`)."""
    opts = options_for(methods, config_set, cfg_options or {})
    return [check_method(name, config_set, opts[name], device) for name in methods]


def format_report(results: list[dict]) -> str:
    lines = []
    text_problems = sorted({p for r in results for p in r["text_encoder"]})
    for p in text_problems:
        lines.append(f"text encoder: MISSING {p}")
    for r in results:
        lines.append(f"{r['method']}" + (f"  ({r['note']})" if r["note"] else ""))
        for row in r["rows"]:
            counted = "" if row["set"] is None else f"  set {row['set']} / {row['total']} tensors"
            layout = f"  {row['layout']}" if row["layout"] else ""
            lines.append(f"  {row['key']}={row['file']}{layout}{counted}  {row['status']}")
    bad = [r["method"] for r in results if not r["ok"]]
    rand = [r["method"] for r in results if r["note"] == RANDOM_INIT]
    lines.append(f"{len(results)} method(s): {len(results) - len(bad) - len(rand)} OK, {len(rand)} {RANDOM_INIT}, "
                 f"{len(bad)} missing or refused" + (f" ({', '.join(bad)})" if bad else "")
                 + ("; the text encoder's folder is missing" if text_problems else ""))
    return "\n".join(lines)


def all_ok(results: list[dict]) -> bool:
    return all(r["ok"] and not r["text_encoder"] for r in results)
