"""Building a model from a config, as timm's ``_factory``: the config is read whole first (keys and values checked
by :mod:`ravar_bench.config`), then the method, the shared head, the actor instance and the loss weights are made
from it in one place."""
from __future__ import annotations

import contextlib
import copy
import inspect

import torch
from mmengine.config import Config

from .config import INJECT, load_config
from .encoders.checkpoint import loaded_weights
from .encoders.shipped_weights import load_shipped, ships, start_sizes
from .model.candidates import CandidateAppearance
from .model.head import SharedHead
from .model.ravar_model import RavarModel
from .registry import METHODS, method_info


def model_kwargs(cfg: Config) -> dict:
    """The model section plus the injected data / text-encoder values the constructor accepts."""
    cls = METHODS.get(cfg.model["type"]) or method_info(cfg.model["type"]).cls
    kwargs = {k: v for k, v in cfg.model.items() if k != "type"}
    params = inspect.signature(cls.__init__).parameters
    for arg, (section, key) in INJECT.items():
        if arg in params and arg not in kwargs and section in cfg and key in cfg[section]:
            kwargs[arg] = cfg[section][key]
    return kwargs


def actor_config(cfg: Config, size: int | None) -> Config:
    """The config of the actor pass's instance: the method's own, built for ``size`` px crops (None: unchanged).
    The clip's and key frame's sizes become ``size``, and so does every ``image_size`` inside the model section
    that states the clip's size (the CLIP towers' ``clip.vision.image_size``), so that one number sets them all."""
    if size is None:
        return cfg
    out = copy.deepcopy(cfg)
    old = {out.data.get("img_size"), out.data.get("keyframe_size")}

    def visit(node):
        for k, v in node.items():
            if isinstance(v, dict):
                visit(v)
            elif k == "image_size" and v in old:
                node[k] = size

    visit(out.model)
    out.data.img_size = out.data.keyframe_size = size
    return out


def _build_actor(cls, cfg: Config, size: int | None):
    try:
        return cls(**model_kwargs(actor_config(cfg, size)))
    except (ValueError, RuntimeError) as e:  # most often weights made for the clip's size (a position embedding)
        if size is None or size == cfg.data.get("img_size"):
            raise
        raise ValueError(f"{cfg.model['type']}: the actor pass's instance, built for head.actor_size={size} px crops, "
                         f"cannot be built: {e}\nWeights given in the model section are loaded into it too; if they "
                         f"were made for data.img_size={cfg.data.get('img_size')} px, set head.actor_size=None (crops "
                         f"resampled to the clip's own size) or head.actor_pass=False") from e


def build_from_config(cfg: Config, device: str | torch.device | None = None) -> RavarModel:
    """The method, the shared head and (``head.actor_pass``) the actor instance of one config, with the config's
    loss weights.

    Args:
        cfg: a config from :func:`ravar_bench.config.load_config` (every key already checked).
        device: where to build; ``"meta"`` builds without memory (for full-size parameter counts).
    """
    info = method_info(cfg.model["type"])
    cls = METHODS.get(info.name)  # the registry resolves the config's type
    ctx = torch.device(device) if device is not None else contextlib.nullcontext()
    with ctx:
        method = cls(**model_kwargs(cfg))
        if not method.feat_dim:
            raise RuntimeError(f"{info.name}: the method must set self.feat_dim in __init__")
        head = SharedHead(method.feat_dim, **{"map_dim": method.map_dim, **cfg.get("head", {})})
        # the actor-centred pass runs a second instance of the same method (its own weights; ravar_bench/model/head.py)
        actor = _build_actor(cls, cfg, head.actor_size) if head.actor_pass else None
    sizes = start_sizes(cfg)
    if sizes and ships(info.name):
        # the tiny configs' starting point under init.weights="pretrained": the weights `ravar-bench pretrain` made
        # and the package ships (ravar_bench/pretraining/), each instance the file made for its own input size.
        # init.instances="actor": only the actor pass's instance, which reads what the pretext read (a person's
        # crop and one fixed sentence); the whole-clip instance, which must learn to read the reference, starts
        # from its random initialisation (benchmarks/default_levers.md, e12). An instance that already loaded a
        # file the config names (model.*pretrained) keeps it.
        instances = {"method": method, "actor": actor}
        for which, size in sizes.items():
            if not loaded_weights(instances[which]):
                load_shipped(instances[which], info.name, size)
    appearance = None
    if head.cand_appearance:  # the actor instance as it starts, frozen (model/candidates.py, e14)
        appearance = CandidateAppearance(copy.deepcopy(actor), head.actor_size)
    return RavarModel(method, head, actor, loss=cfg.get("loss", {}), appearance=appearance)


def build_method(name: str, config_set: str = "tiny", cfg_options: dict | None = None,
                 device: str | torch.device | None = None) -> RavarModel:
    """The named method with its shared head, from its tiny or full config.

    Args:
        name: a registered method (``ravar-bench list``).
        config_set: ``"tiny"`` or ``"full"``, optionally with overlays (``"full+released"``).
        cfg_options: dotted config keys to override, e.g. ``{"head.box_mode": "regress"}``; each is checked.
        device: where to build (``"meta"``: no memory).

    Returns:
        :class:`ravar_bench.model.ravar_model.RavarModel`: ``forward(batch) -> {"logits", "boxes"[, "losses"]}``.
    """
    return build_from_config(load_config(name, config_set, cfg_options), device=device)


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["build_method", "build_from_config", "actor_config", "model_kwargs", "count_params"]
