"""Config loading (mmengine ``Config`` with ``_base_`` inheritance) and key checking; :mod:`ravar_bench.factory`
builds the model from what this returns.

A method's config of a set is its own file / dict (``ravar_bench.registry.MethodInfo.config_source``); a file with
``_base_`` stands alone, a dict or a file without ``_base_`` is merged over the suite's base config of the set
(``configs/_base_/<set>.py``); a method without one runs on that base config with ``model=dict(type=name)`` and its
constructor's defaults. ``model.type`` is resolved through the mmengine registry ``METHODS``.

Every ``--cfg-options`` key must be one some code reads: a key of the base configs, a key the method's own config
declares, or ``model.<constructor parameter>``; a typo is a UsageError naming the closest known key.
"""
from __future__ import annotations

import difflib
import functools
import inspect
import logging
import math
from pathlib import Path

from mmengine.config import Config

from .data.dataset import DATA_KEYS
from .errors import UsageError
from .model.head import SharedHead, ravar_loss
from .reference import BASE_CONFIG_DIR
from .registry import METHODS, method_info

log = logging.getLogger(__name__)

CONFIG_SETS = ("tiny", "full")

# Values a model constructor may take from the data / text-encoder sections, so one config fact
# (e.g. the clip length) is written once and the model is built for the input it will get.
INJECT = {
    "num_frames": ("data", "num_frames"),
    "img_size": ("data", "img_size"),
    "keyframe_size": ("data", "keyframe_size"),
    "num_dets": ("data", "num_dets"),
    "text_dim": ("text_encoder", "dim"),
    "max_text_len": ("text_encoder", "max_len"),
    "pixel_mean": ("data", "mean"),  # the statistics the frames are normalised with
    "pixel_std": ("data", "std"),
}

# Keys the loader itself writes (or mmengine reads), never read from a user's options.
_RESERVED = {"method_name", "config_set", "config_path", "seed", "custom_imports", "default_scope"}


def _flat_keys(d: dict, prefix: str = "") -> set[str]:
    """Every key path of a nested dict: ``{"a": {"b": 1}}`` -> {"a", "a.b"}."""
    out = set()
    for k, v in d.items():
        out.add(prefix + str(k))
        if isinstance(v, dict):
            out |= _flat_keys(v, f"{prefix}{k}.")
    return out


@functools.lru_cache(maxsize=None)
def base_keys() -> frozenset[str]:
    """The keys of every base config (``configs/_base_/*.py``), the shared head and loss's parameters and the
    data keys the clip dataset reads (``data.dataset.DATA_KEYS``)."""
    keys: set[str] = set()
    for f in sorted(BASE_CONFIG_DIR.glob("*.py")):
        keys |= _flat_keys(Config.fromfile(str(f)).to_dict())
    for section, fn, skip in (("head", SharedHead.__init__, 2), ("loss", ravar_loss, 4)):
        keys |= {f"{section}.{p}" for p in list(inspect.signature(fn).parameters)[skip:]}
    keys |= {f"data.{k}" for k in DATA_KEYS}
    return frozenset(keys | _RESERVED)


def _ctor_params(cls) -> tuple[dict, bool]:
    """The constructor's named parameters (without self) and whether it takes ``**kwargs``."""
    params = dict(inspect.signature(cls.__init__).parameters)
    params.pop("self", None)
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = {k: p for k, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return named, var_kw


def known_keys(cfg: Config | dict, cls) -> set[str]:
    """What may be set on a method's config: the base configs' keys, the config's own, ``model.<parameter>``."""
    params, _ = _ctor_params(cls)
    return set(base_keys()) | _flat_keys(dict(cfg)) | {f"model.{p}" for p in params}


def check_option_keys(options: dict, known: set[str], cls, what: str = "--cfg-options") -> None:
    """A UsageError for the first key no code reads, naming the closest known one."""
    _, var_kw = _ctor_params(cls)
    for key in options:
        parts = str(key).split(".")
        if key in known:
            continue
        # below a constructor parameter (e.g. model.blip2.vision.image_size) the method reads what it reads
        if parts[0] == "model" and len(parts) > 1 and (var_kw or f"model.{parts[1]}" in known):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"{what}: unknown config key {key!r} for method {cls.method_name!r} (no code reads it){hint}")


def _read(src, base_path: Path) -> Config:
    """A method's own config (file or dict); merged over the set's base config unless it names its own ``_base_``."""
    if isinstance(src, dict):
        cfg = Config.fromfile(str(base_path))
        cfg.merge_from_dict(src)
        return cfg
    own = Config.fromfile(str(src))
    if Config._get_base_files(str(src)):  # mmengine's own parse of the file's top-level ``_base_ = ...``
        return own
    cfg = Config.fromfile(str(base_path))
    cfg.merge_from_dict(own.to_dict())
    return cfg


def _int_at_least(low):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low), f"an integer >= {low}"


def _number(low=None, high=None, low_open=False):
    def ok(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            return False
        return (low is None or (v > low if low_open else v >= low)) and (high is None or v <= high)
    what = "a number" + (f" {'>' if low_open else '>='} {low}" if low is not None else "") + \
        (f" and <= {high}" if high is not None else "")
    return ok, what


def _one_of(*values):
    return (lambda v: v in values), "one of " + ", ".join(map(repr, values))


def _rgb(positive: bool):
    """Per-channel pixel statistics on the 0-1 scale the frames are decoded to (0-255 values would be a factor 255
    off: one line now, not a model reading saturated pixels)."""
    def ok(v):
        return (isinstance(v, (list, tuple)) and len(v) == 3
                and all(not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) for x in v)
                and all((0 < x <= 1) if positive else (0 <= x <= 1) for x in v))
    span = "(0, 1]" if positive else "[0, 1]"
    return ok, f"3 numbers (R, G, B) in {span} (the 0-1 pixel scale: divide 0-255 statistics by 255)"


def _optional(rule):
    ok, what = rule
    return (lambda v: v is None or ok(v)), f"None or {what}"


# What each value may be, checked when a config is loaded (a wrong value is one line naming the key, the value and
# what is allowed, never a torch error mid-run). The values' meanings: configs/_base_/*.py.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
VALUE_RULES = {
    "train.epochs": _int_at_least(1),
    "train.batch_size": _int_at_least(1),
    "train.lr": _number(0, low_open=True),
    "train.warmup_ratio": _number(0, 1),
    "train.weight_decay": _number(0),
    "train.grad_clip": _optional(_number(0, low_open=True)),
    "train.num_workers": _int_at_least(0),
    "train.precision": _one_of(*PRECISIONS),
    "train.grad_accum": _int_at_least(1),
    "train.prefetch_factor": _int_at_least(1),
    "train.pin_memory": _one_of("auto", None, True, False),
    "loss.box_weight": _number(0),
    "loss.cls_weight": _number(0),
    "head.box_mode": _one_of("regress", "candidates"),
    "head.box_activation": _one_of("sigmoid", "none"),
    "head.dropout": _number(0, 1),
    "head.select_weight": _number(0),
    "head.actor_size": _optional(_int_at_least(8)),
    "head.cand_hidden": _int_at_least(1),
    "head.actor_source": _one_of("stored", "clip"),
    "head.actor_norm": _one_of(True, False),
    "head.cand_appearance": _one_of(True, False),
    "train.prior_bias": _one_of(True, False),
    "train.ema": _optional((lambda v: _number(0, 1, low_open=True)[0](v) and v < 1, "a number > 0 and < 1")),
    "init.weights": _one_of("pretrained", "scratch"),
    "init.instances": _one_of("all", "actor"),
    "data.num_frames": _int_at_least(1),
    "data.frame_stride": _int_at_least(1),
    "data.img_size": _int_at_least(8),
    "data.keyframe_size": _int_at_least(8),
    "data.num_dets": _int_at_least(1),
    "data.mean": _rgb(positive=False),
    "data.std": _rgb(positive=True),
    # a backbone's own statistics (encoders/pixel_norm.py): the frames are renormalised to them
    "model.backbone_mean": _optional(_rgb(positive=False)),
    "model.backbone_std": _optional(_rgb(positive=True)),
    "eval.batch_size": _int_at_least(1),
    "eval.n_boot": _int_at_least(0),
    "eval.average": _one_of("weighted", "macro"),
    "eval.iou_gate": _optional(_number(0, 1)),
}


def check_values(cfg: Config, where: str) -> None:
    """A UsageError for the first config value outside what its key allows (:data:`VALUE_RULES`)."""
    for key, (ok, allowed) in VALUE_RULES.items():
        section, _, field = key.partition(".")
        if section in cfg and field in (cfg[section] or {}):
            value = cfg[section][field]
            if not ok(value):
                raise UsageError(f"{where}: {key}={value!r} is not allowed; it must be {allowed}")


def _missing_args(cfg: Config, cls) -> list[str]:
    params, _ = _ctor_params(cls)
    model = cfg.get("model", {})
    missing = []
    for p, par in params.items():
        if par.default is not inspect.Parameter.empty or p in model:
            continue
        inj = INJECT.get(p)
        if inj and inj[0] in cfg and inj[1] in cfg[inj[0]]:
            continue
        missing.append(p)
    return missing


def load_config(name: str, config_set: str = "tiny", cfg_options: dict | None = None) -> Config:
    """The resolved config of one method, every key and value checked before anything is built.

    Args:
        name: a registered method (``ravar-bench list``).
        config_set: ``"tiny"`` or ``"full"``, optionally followed by overlays from the method's configs, e.g.
            ``"full+released"`` = configs/refatomnet/full.py with configs/refatomnet/released.py merged over it.
        cfg_options: dotted overrides (``{"train.batch_size": 8}``); a key no code reads or a value its key does
            not allow (:data:`VALUE_RULES`) is a :class:`~ravar_bench.errors.UsageError` naming it.

    Returns:
        an mmengine ``Config`` with ``method_name``, ``config_set`` and ``config_path`` (where it came from) set.
    """
    base, *overlays = config_set.split("+")
    if base not in CONFIG_SETS:
        raise UsageError(f"config_set must be one of {CONFIG_SETS} (optionally +overlay), got {config_set!r}")
    info = method_info(name)
    base_path = BASE_CONFIG_DIR / f"{base}.py"
    src = info.config_source(base)
    if src is None:
        cfg = Config.fromfile(str(base_path))
        cfg.merge_from_dict({"model": {"type": name}})
        where = f"{base_path} + model=dict(type={name!r})"
        log.info("%s: no %s config of its own; running on the %s base config with model=dict(type=%r) and the "
                 "constructor's defaults", name, base, base, name)
    else:
        cfg = _read(src, base_path)
        where = str(src) if not isinstance(src, dict) else f"{base_path} + the {base!r} dict given to register_method"
        mtype = cfg.get("model", {}).get("type")
        if mtype is None:
            cfg.merge_from_dict({"model": {"type": name}})
        elif mtype != name:
            raise UsageError(f"{where}: 'model.type' must be {name!r} (got {mtype!r})")
    for ov in overlays:
        osrc = info.config_source(ov)
        if osrc is None:
            raise UsageError(f"method {name!r} has no config overlay {ov!r}: expected {info.config_path(ov)} "
                             f"(it has: {', '.join(info.config_sets()) or 'none'})")
        cfg.merge_from_dict(dict(osrc) if isinstance(osrc, dict) else Config.fromfile(str(osrc)).to_dict())
    cls = METHODS.get(name)
    params, var_kw = _ctor_params(cls)
    known = base_keys()
    for key in sorted(_flat_keys(cfg.to_dict())):  # a typo in a method's own config (no code would read it)
        if key.split(".")[0] not in ("model", *_RESERVED) and key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            raise UsageError(f"{where}: unknown config key {key!r} (no code reads it; the known keys are those of "
                             f"configs/_base_/*)" + (f"; did you mean {close[0]!r}?" if close else ""))
    if not var_kw:
        for k in cfg.model:
            if k != "type" and k not in params:
                close = difflib.get_close_matches(k, list(params), n=1, cutoff=0.6)
                raise UsageError(f"{where}: model.{k} is not a parameter of {cls.__qualname__}"
                                 + (f"; did you mean model.{close[0]}?" if close else ""))
    if cfg_options:
        check_option_keys(cfg_options, known_keys(cfg, cls), cls)
        cfg.merge_from_dict(cfg_options)
    missing = _missing_args(cfg, cls)
    if missing:
        if src is None:
            raise UsageError(f"method {name!r} ships no {base} config and its constructor has no default for "
                             f"{', '.join(missing)}: give it one (register_method(..., configs={{{base!r}: ...}}) or "
                             f"{info.config_path(base)})")
        raise UsageError(f"{where}: the model section lacks {', '.join(missing)} (no constructor default)")
    check_values(cfg, where if not cfg_options else f"{where} with --cfg-options")
    cfg.method_name = name
    cfg.config_set = config_set
    cfg.config_path = where
    return cfg


__all__ = ["load_config", "known_keys", "check_option_keys", "base_keys", "CONFIG_SETS"]
