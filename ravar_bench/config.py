"""Config loading (mmengine ``Config`` with ``_base_`` inheritance) and the method builder."""
from __future__ import annotations

import contextlib
import inspect

import torch
from mmengine.config import Config

from .head import RavarModel, SharedHead
from .registry import method_info

CONFIG_SETS = ("tiny", "full")

# Values a model constructor may take from the data / text-encoder sections, so one config fact
# (e.g. the clip length) is written once and the model is built for the input it will get.
_INJECT = {
    "num_frames": ("data", "num_frames"),
    "img_size": ("data", "img_size"),
    "keyframe_size": ("data", "keyframe_size"),
    "num_dets": ("data", "num_dets"),
    "text_dim": ("text_encoder", "dim"),
    "max_text_len": ("text_encoder", "max_len"),
    "pixel_mean": ("data", "mean"),  # the statistics the frames are normalised with
    "pixel_std": ("data", "std"),
}


def load_config(name: str, config_set: str = "tiny", cfg_options: dict | None = None) -> Config:
    """``config_set``: "tiny" or "full", optionally followed by overlays from the method's config folder,
    e.g. "full+released" = configs/refatomnet/full.py with configs/refatomnet/released.py merged over it."""
    base, *overlays = config_set.split("+")
    if base not in CONFIG_SETS:
        raise ValueError(f"config_set must be one of {CONFIG_SETS} (optionally +overlay), got {config_set!r}")
    info = method_info(name)
    path = info.config_path(base)
    if not path.is_file():
        raise FileNotFoundError(f"method {name!r} has no {base} config: expected {path}")
    cfg = Config.fromfile(str(path))
    for ov in overlays:
        opath = info.config_path(ov)
        if not opath.is_file():
            raise FileNotFoundError(f"method {name!r} has no config overlay {ov!r}: expected {opath}")
        cfg.merge_from_dict(Config.fromfile(str(opath)).to_dict())
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if "model" not in cfg or cfg.model.get("type") != name:
        raise ValueError(f"{path}: 'model.type' must be {name!r} (got {cfg.get('model', {}).get('type')!r})")
    cfg.method_name = name
    cfg.config_set = config_set
    cfg.config_path = str(path)
    return cfg


def model_kwargs(cfg: Config) -> dict:
    """The model section plus the injected data / text-encoder values the constructor accepts."""
    info = method_info(cfg.model["type"])
    kwargs = {k: v for k, v in cfg.model.items() if k != "type"}
    params = inspect.signature(info.cls.__init__).parameters
    for arg, (section, key) in _INJECT.items():
        if arg in params and arg not in kwargs and section in cfg and key in cfg[section]:
            kwargs[arg] = cfg[section][key]
    return kwargs


def build_from_config(cfg: Config, device: str | torch.device | None = None) -> RavarModel:
    """Build method + shared head. ``device="meta"`` builds without memory (for full-size counts)."""
    info = method_info(cfg.model["type"])
    ctx = torch.device(device) if device is not None else contextlib.nullcontext()
    with ctx:
        method = info.cls(**model_kwargs(cfg))
        if not method.feat_dim:
            raise RuntimeError(f"{info.name}: the method must set self.feat_dim in __init__")
        head = SharedHead(method.feat_dim, **cfg.get("head", {}))
    return RavarModel(method, head)


def build_method(name: str, config_set: str = "tiny", cfg_options: dict | None = None,
                 device: str | torch.device | None = None) -> RavarModel:
    """Public API: the named method with its shared head, from its tiny or full config."""
    return build_from_config(load_config(name, config_set, cfg_options), device=device)


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["load_config", "build_method", "build_from_config", "count_params", "model_kwargs"]
