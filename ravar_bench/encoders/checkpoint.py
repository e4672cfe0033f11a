"""Loading local checkpoints into a backbone: the file's layout recognised, keys mapped, and every tensor of the
target module given a value, or one clear error (:class:`CheckpointError`) naming the file, its layout and the fix.

Strict by default: a file that leaves part of the module at its random initialisation is refused, unless that part
is declared ``replaced`` by the method (a classifier head, a position table resized on purpose). Each load is
recorded on the module (:func:`loaded_weights`: file, sha256, layout, tensors set / total) for the result row.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import zipfile
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

from ..errors import UsageError

log = logging.getLogger(__name__)

# Counters, not weights: a file without them (torchvision's ImageNet files) still sets every value that matters.
_NOT_WEIGHTS = ("num_batches_tracked",)


class CheckpointError(UsageError):
    """A weights file that does not fit the model built from the config (wrong model, layout or missing file)."""


class CheckpointMissingError(CheckpointError, FileNotFoundError):
    """A configured weights file or folder that is not there (also a FileNotFoundError)."""


class CheckpointShapeError(CheckpointError, RuntimeError):
    """A checkpoint tensor's shape differs from the model's (also a RuntimeError, as torch's own load error)."""


def _numpy_safe_globals():
    # mmengine/mmaction checkpoints keep numpy scalars in their 'meta'; allow exactly those types
    # through weights_only loading instead of falling back to a full (code-running) unpickle. A file pickled
    # under numpy 1.x names them numpy.core.multiarray.*, under numpy 2 numpy._core.multiarray.*: the same
    # functions, so both names are registered for them (and nothing else).
    import numpy as np

    allowed = [np.dtype, np.ndarray]
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x itself
        from numpy.core import multiarray
    for fn in ("_reconstruct", "scalar"):
        obj = getattr(multiarray, fn)
        allowed += [(obj, f"numpy.core.multiarray.{fn}"), (obj, f"numpy._core.multiarray.{fn}")]
    allowed += [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32", "bool")]
    return allowed


def is_torchscript(path: str | Path) -> bool:
    """A TorchScript archive (OpenAI's CLIP ``.pt`` files): a zip holding ``constants.pkl`` and ``code/``."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


# scalars OpenAI's archives keep among the weights (open_clip's load_openai_model drops them too)
_OPENAI_ATTRS = ("input_resolution", "context_length", "vocab_size")


def _read_torchscript(p: Path) -> dict:
    # as open_clip's load_openai_model: jit.load on the CPU, then its state dict; OpenAI's archives also keep
    # plain attributes (input_resolution, context_length, vocab_size) that are not weights
    module = torch.jit.load(str(p), map_location="cpu")
    return {k: v for k, v in module.state_dict().items() if isinstance(v, torch.Tensor) and k not in _OPENAI_ATTRS}


def read_state_dict(path: str | Path, what: str = "checkpoint", container_keys=("state_dict", "model", "module",
                                                                                  "model_state")) -> dict:
    """The tensors of a local weights file: safetensors, a torch pickle (weights only) or a TorchScript archive,
    unwrapped from its container (``state_dict``: mmengine, ``model``: LAVIS / DETR, ``model_state``: Hiera)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointMissingError(
            f"{what}: no local file at {p}. Nothing is downloaded at run time: download the checkpoint yourself "
            f"and set its path in the config (model.pretrained=/path/to/file, or the key docs/model_zoo.md names)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    if is_torchscript(p):
        return _read_torchscript(p)
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # weights-only refusal (code in the pickle) or a file that is no checkpoint
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        # Releases that pickle their training config beside the weights (Singularity's OmegaConf 'config')
        # are refused too; the user, trusting the file, can keep its weights alone once
        hint = (f"; if you trust the file, keep its weights alone once: torch.save(torch.load('{p}', "
                f"weights_only=False)['model'], 'weights.pth') (use the key that holds the state dict)"
                if "global" in str(e).lower() else "")
        raise CheckpointError(f"{what} {p}: cannot be read as weights only ({first}); a file that needs code to "
                              f"unpickle is not loaded{hint}") from e
    for k in container_keys:
        if isinstance(obj, dict) and k in obj and isinstance(obj[k], dict):
            obj = obj[k]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what}: {p} does not hold a state dict (got {type(obj).__name__})")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _resnet_depth(keys) -> str:
    blocks = {k.split(".")[1] for k in keys if k.startswith("layer3.") and k.split(".")[1].isdigit()}
    return {6: "ResNet-50", 23: "ResNet-101", 36: "ResNet-152"}.get(len(blocks), "ResNet")


def _has(keys, *prefixes) -> bool:
    return all(any(k.startswith(p) for k in keys) for p in prefixes)


# (test on the key set, what the file is); first match wins, so the more specific layouts come first
_LAYOUTS = [
    (lambda k: _has(k, "visual_encoder.", "Qformer.bert."), "a LAVIS BLIP-2 file (visual_encoder.*, Qformer.bert.*)"),
    (lambda k: _has(k, "vision_model.", "qformer."), "a transformers BLIP-2 state dict (vision_model.*, qformer.*)"),
    (lambda k: _has(k, "text_model.", "vision_model.", "prompts_generator."), "a transformers X-CLIP state dict"),
    (lambda k: _has(k, "visual.", "token_embedding.", "transformer.resblocks."),
     "an OpenAI / open_clip CLIP state dict (visual.*, transformer.resblocks.*)"),
    (lambda k: _has(k, "image_encoder.", "mask_decoder."), "Meta's SAM file (image_encoder.*, mask_decoder.*)"),
    (lambda k: _has(k, "vision_encoder.", "mask_decoder."), "a transformers SamModel state dict (vision_encoder.*)"),
    (lambda k: _has(k, "model.backbone.conv_encoder.model.conv1.") or _has(k, "model.backbone.model.conv1."),
     "a transformers DETR with the timm backbone"),
    (lambda k: _has(k, "model.backbone.conv_encoder.model.embedder."),
     "a transformers DETR with its own ResNet backbone"),
    (lambda k: _has(k, "text_encoder.", "vision_encoder."), "Singularity's official file (text_encoder.*, "
                                                             "vision_encoder.*)"),
    (lambda k: _has(k, "backbone.conv1_s."), "an mmaction2 X3D checkpoint (backbone.conv1_s.*)"),
    (lambda k: _has(k, "backbone.conv1.conv.", "backbone.layer1."), "an mmaction2 ResNet3d (I3D) checkpoint"),
    (lambda k: _has(k, "backbone.patch_embed.projection.", "backbone.blocks."),
     "an mmaction2 ViT / MViT checkpoint (backbone.patch_embed.projection.*)"),
    (lambda k: _has(k, "pos_embed_spatial"), "a Hiera checkpoint (pos_embed_spatial, blocks.*)"),
    (lambda k: _has(k, "patch_embed.proj.", "blocks.0.mlp.fc1."),
     "an OpenGVLab VideoMAE V2 / timm-style ViT file (patch_embed.proj.*, blocks.N.mlp.fc1.*)"),
    (lambda k: _has(k, "conv1.weight", "layer1.0.", "fc."), None),  # an ImageNet ResNet: depth named below
    (lambda k: _has(k, "backbone.", "cls_head."), "an mmaction2 recognizer checkpoint (backbone.*, cls_head.*)"),
    (lambda k: _has(k, "embeddings.word_embeddings.", "encoder.layer."), "a BERT state dict"),
]


def sniff_layout(sd: dict, torchscript: bool = False) -> str:
    """What a state dict looks like, in words for an error message ("a LAVIS BLIP-2 file", ...)."""
    keys = [k for k in sd if isinstance(k, str)]
    for pre in ("module.",):  # DDP's wrapper says nothing about the layout
        if keys and all(k.startswith(pre) for k in keys):
            keys = [k[len(pre):] for k in keys]
    found = next(((desc, test) for test, desc in _LAYOUTS if test(keys)), None)
    if found is None:
        desc = f"an unrecognised layout (first keys {keys[:3]})"
    else:
        desc = found[0] or f"an ImageNet {_resnet_depth(keys)} state dict (conv1.weight, layer1.*, fc.*)"
    return ("an OpenAI TorchScript CLIP archive holding " + desc) if torchscript else desc


def record_load(module: torch.nn.Module, path: str | Path, layout: str, n_set: int, total: int) -> dict:
    """Keep on ``module`` which file set how many of its tensors (:func:`loaded_weights` collects them)."""
    rec = {"file": str(Path(path).expanduser().resolve()), "sha256": sha256(path), "layout": layout,
           "set": n_set, "total": total}
    module.__dict__.setdefault("_ravar_loaded", []).append(rec)
    return rec


def loaded_weights(model: torch.nn.Module) -> list[dict]:
    """Every file loaded into ``model`` or its submodules: {file, sha256, layout, set, total}, in module order."""
    out = []
    for m in model.modules():
        out += m.__dict__.get("_ravar_loaded", [])
    return out


def _weight_keys(module: torch.nn.Module) -> dict:
    return {k: v for k, v in module.state_dict().items() if not k.endswith(_NOT_WEIGHTS)}


def check_complete(module_keys, loaded_keys, path, what: str, layout: str, replaced=(), expect: str = "",
                   n_file: int | None = None) -> list[str]:
    """The module's keys the file leaves without a value (other than ``replaced`` prefixes): none, or an error."""
    loaded = set(loaded_keys)
    missing = [k for k in module_keys if k not in loaded and not k.startswith(tuple(replaced))
               and not k.endswith(_NOT_WEIGHTS)]
    if missing:
        total, n_set = len(module_keys), sum(k in loaded for k in module_keys)
        fix = f"point it at {expect}" if expect else "point it at the file docs/model_zoo.md lists for this method"
        raise CheckpointError(
            f"{what} {path}: this looks like {layout}; it sets {n_set} of the model's {total} tensors "
            f"({len(missing)} would stay random, e.g. {missing[:3]}; "
            f"{'' if n_file is None else f'{n_file} keys in the file; '}nothing is trained on a half-loaded model): "
            f"{fix}")
    return missing


def load_into(module: torch.nn.Module, path: str | Path, strip_prefixes=("backbone.", "module."),
              what: str = "checkpoint", strict: bool = True, ignore_prefixes=(), replaced=(), key_map=None,
              expect: str = "", key_map_when=None) -> dict:
    """Load ``path`` into ``module`` after stripping ``strip_prefixes``; returns {"missing", "unexpected",
    "ignored", "layout", "set", "total"}.

    ``ignore_prefixes`` (after stripping): keys of the file deliberately not loaded, e.g. a Kinetics-400 classifier
    (``cls_head.``, ``head.``) that the RAVAR model replaces; they are counted in "ignored", not "unexpected".
    ``replaced``: prefixes of the *module's* keys that may stay at their initialisation (declared by the method).
    ``key_map``: a function mapping the stripped file keys of another layout to the module's names (returns None
    for keys to leave out, or a tuple of names for a tensor the module holds twice, as transformers' SAM its
    positional embedding); ``key_map_when``: a test on the file's (stripped) key set, the map applied only when it
    holds (a layout whose names would clash with the module's own). ``strict`` (the default): any other module
    tensor left without a value is a
    :class:`CheckpointError` naming the file, the layout it looks like and ``expect`` (what fits); a tensor whose
    shape differs from the module's is an error naming the keys, never a silent skip.
    """
    sd = read_state_dict(path, what)
    layout = sniff_layout(sd, torchscript=is_torchscript(Path(path).expanduser()))
    stripped = {}
    for k, v in sd.items():
        for pre in strip_prefixes:
            if k.startswith(pre):
                k = k[len(pre):]
                break
        stripped[k] = v
    if key_map is not None and key_map_when is not None and not key_map_when(set(stripped)):
        key_map = None
    mapped, ignored = {}, []
    for k, v in stripped.items():
        if any(k.startswith(pre) for pre in ignore_prefixes):
            ignored.append(k)
            continue
        if key_map is not None:
            k, orig = key_map(k), k
            if k is None:
                ignored.append(orig)
                continue
        for name in (k if isinstance(k, tuple) else (k,)):
            mapped[name] = v
    own = module.state_dict()
    bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in mapped.items()
           if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise CheckpointShapeError(
            f"{what} {path}: this looks like {layout}; {len(bad)} tensors have other shapes than the model built "
            f"from the config "
            f"(key, file, model): {bad[:5]}; the checkpoint is for another architecture, clip length or image size")
    weights = _weight_keys(module)
    if strict:
        check_complete(list(weights), mapped, path, what, layout, replaced, expect, n_file=len(sd))
    res = module.load_state_dict(mapped, strict=False)
    report = {"missing": list(res.missing_keys), "unexpected": list(res.unexpected_keys), "ignored": ignored,
              "layout": layout}
    if report["missing"] or report["unexpected"]:
        log.warning("%s %s: %d missing keys %s, %d unexpected keys %s", what, path, len(report["missing"]),
                    report["missing"][:5], len(report["unexpected"]), report["unexpected"][:5])
    if ignored:
        log.info("%s %s: %d keys not loaded on purpose (%s...)", what, path, len(ignored), ignored[:3])
    n_set = sum(k in mapped for k in weights)
    report.update(record_load(module, path, layout, n_set, len(weights)))
    return report


class _SchedulesOnCPU(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.linspace and kwargs.get("device") is None:
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


@contextlib.contextmanager
def meta_safe_build():
    """Build a library backbone under ``build_method(..., device="meta")``.

    Several libraries (mmaction's VisionTransformer, hiera) compute their drop-path schedule as
    ``[x.item() for x in torch.linspace(...)]``, and ``.item()`` is impossible on a meta tensor. Inside
    this context ``torch.linspace`` without an explicit device runs on the CPU (a handful of floats);
    every parameter is still created on the ambient device. Harmless outside a meta context.
    """
    with _SchedulesOnCPU():
        yield


def mmengine_init_weights(module: torch.nn.Module) -> None:
    """Run an OpenMMLab backbone's own ``init_weights()`` (its published initialisation scheme) without the
    per-parameter table mmengine logs at INFO level when no log file is attached. A meta-device module
    (``build_method(..., device="meta")``) has no values to initialise and is left alone (mmengine's
    bookkeeping copies every parameter to the CPU, which a meta tensor cannot do)."""
    from mmengine.logging import MMLogger

    if any(p.is_meta for p in module.parameters()):
        return

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    finally:
        logger.setLevel(level)
