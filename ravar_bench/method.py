"""The method contract: a module that turns a batch into pooled features (B, D).

Batch keys a method may ask for (it lists them in ``needs``; the data pipeline provides only those,
so a single-frame method never pays for decoding a clip):

- ``video``        (B, T, 3, H, W) float, normalised with the config's mean/std
- ``keyframe``     (B, 3, Hk, Wk) float, normalised
- ``text``         list of B reference strings (for methods with their own tokeniser)
- ``text_emb``     (B, Dt) pooled embedding from the frozen text encoder
- ``text_tokens``  (B, L, Dt) token features from the frozen text encoder, with ``text_mask`` (B, L) bool
- ``detections``   dict: ``boxes`` (B, No, 4) normalised x1y1x2y2, ``scores`` (B, No), ``mask`` (B, No) bool,
                   ``cat_ids`` (B, No) long (COCO ids), ``cat_emb`` (B, No, Dt) frozen text embedding
                   of each category name
Always present: ``key`` (list of B), ``clip_key`` (list of B: "<video_id>___<timestamp>", the key of the
clip's pixels, for caching frozen features), ``labels`` (B, 80) multi-hot, ``box`` (B, 4).

The builder attaches the one :class:`ravar_bench.model.head.SharedHead`; a method never owns a head. A method may
also expose a spatial map (``map_dim`` / ``spatial_map`` below) that the head reads.
"""
from __future__ import annotations

import torch
from torch import nn

BATCH_KEYS = frozenset({"video", "keyframe", "text", "text_emb", "text_tokens", "detections"})


def frozen_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The maximal sub-modules whose parameters all exist and are all frozen (a frozen tower, not a lone LayerNorm
    inside a trainable block: only modules whose parent has trainable parameters are returned)."""
    out = []

    def visit(prefix: str, mod: nn.Module) -> None:
        params = list(mod.parameters())
        if params and not any(p.requires_grad for p in params):
            out.append((prefix, mod))
            return
        for name, child in mod.named_children():
            visit(f"{prefix}.{name}" if prefix else name, child)

    visit("", model)
    return out


class FrozenStaysEval(nn.Module):
    """``train()`` as ``nn.Module``'s, except that every fully frozen sub-module (:func:`frozen_modules`: a frozen
    detector, SAM, a ViT tower, an LLM) stays in eval mode: nothing trains it, so its dropout must not add noise and
    its BatchNorm statistics must not drift. Every :class:`Method` is one (a method never writes this override);
    a shared encoder used on its own (``encoders.blip2.Blip2VideoEncoder``) inherits it too."""

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            for _, sub in frozen_modules(self):
                sub.eval()
        return self


class Method(FrozenStaysEval):
    """Base class of every registered method. Subclasses set ``needs`` and ``feat_dim``."""

    needs: frozenset = frozenset()
    method_name: str = "?"  # set by @register_method

    def __init__(self):
        super().__init__()
        unknown = set(self.needs) - BATCH_KEYS
        if unknown:
            raise ValueError(f"{type(self).__name__}.needs has unknown batch keys {sorted(unknown)}")
        self.feat_dim: int = 0

    def check_video(self, video: torch.Tensor, num_frames: int, size: int | tuple[int, int], key: str = "video"):
        """A clear error, naming the method and the config value, instead of a shape crash deep inside torch."""
        hw = (size, size) if isinstance(size, int) else tuple(size)
        want = (num_frames, 3, *hw) if key == "video" else (3, *hw)
        if video.dim() != len(want) + 1 or tuple(video.shape[1:]) != want:
            fields = "data.keyframe_size"
            if key == "video":  # name the field that differs (both when the rank or both parts are wrong)
                got = tuple(video.shape[1:])
                wrong = [f for f, bad in (("data.num_frames", len(got) != 4 or got[0] != num_frames),
                                          ("data.img_size", len(got) != 4 or got[2:] != hw)) if bad]
                fields = " and ".join(wrong or ["data.num_frames", "data.img_size"])
            raise ValueError(
                f"{self.method_name}: batch['{key}'] has shape {tuple(video.shape)}, but the method was built "
                f"for (B, {', '.join(map(str, want))}); set {fields} in the config to match the model, or "
                f"rebuild the model for this input"
            )

    # Optional, for the shared head's candidate mode (ravar_bench/model/head.py): a method that can say where it
    # looks sets ``self.map_dim`` (channels) in __init__ and, in forward, ``self.spatial_map`` to a
    # sentence-conditioned (B, map_dim, h, w) key-frame-aligned map. Methods without one keep map_dim = 0.
    map_dim: int = 0
    spatial_map = None

    # A method with a training objective of its own (e.g. RefCLIP's anchor contrast) sets ``self.aux_loss``
    # (a scalar tensor, already weighted) in forward; the engine adds it to the shared loss.
    aux_loss = None
    # The submodules that only that objective trains (their output is read without a gradient path, e.g.
    # RefCLIP's anchor scorer picks a region by argmax). RavarModel's actor pass drops the objective, so its
    # instance freezes them (ravar_bench/model/head.py).
    objective_only: tuple[str, ...] = ()
    # The config keys (under ``model.``) that freeze one of the method's visual towers, e.g. BLIP-2's ViT
    # (``"freeze_vision"``). ``ravar-bench pretrain`` sets each that is true to false, so that a tower the benchmark
    # freezes is frozen *pretrained*, as the paper's are (BLIP-2's EVA ViT-g), and never frozen random (e17 in
    # benchmarks/default_levers.md).
    tower_freeze_keys: tuple[str, ...] = ()

    def forward(self, batch: dict) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def contrastive_pair(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The family's own image-text pretext (``ravar-bench pretrain``; e19 in benchmarks/default_levers.md): the
        visual and the text embedding its towers give for ``batch`` (a person crop whose ``text`` is a caption),
        ``visual`` (B, E) or (B, K, E) (K alternatives, e.g. BLIP-2's queries: the best-matching one counts) and
        ``text`` (B, E). None: the method has no such pair (its towers learn the pretext head's targets only)."""
        return None
