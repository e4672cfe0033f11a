"""mmaction2 video backbones for the AAL baselines: built from their dict configs with mmaction's own init and
an optional local checkpoint. The method base they share is :class:`ravar_bench.model.bases.TextFusedVideoMethod`."""
from __future__ import annotations

import contextlib
import re

from .checkpoint import load_into, meta_safe_build, mmengine_init_weights
from .mmaction_compat import mmaction_models

# Keys of an mmaction2 recognizer checkpoint that are not the backbone's and that the RAVAR model replaces.
MMACTION_NON_BACKBONE = ("cls_head.", "data_preprocessor.")


def opengvlab_videomae2_key(key: str) -> str | None:
    """OpenGVLab's VideoMAE V2 names (their timm-style ViT: patch_embed.proj, blocks.N.mlp.fc1 / fc2, head) ->
    mmaction2's VisionTransformer (patch_embed.projection, blocks.N.mlp.layers.0.0 / layers.1); mmaction2's own
    names pass unchanged; the classifier (head.*) is left out (the RAVAR head replaces it)."""
    if key.startswith("head."):
        return None
    key = re.sub(r"^patch_embed\.proj\.", "patch_embed.projection.", key)
    key = re.sub(r"^(blocks\.\d+\.mlp\.)fc1\.", r"\1layers.0.0.", key)
    return re.sub(r"^(blocks\.\d+\.mlp\.)fc2\.", r"\1layers.1.", key)


def fixed_tables(backbone) -> tuple[str, ...]:
    """Buffers that are a function of the config, not weights: the ViT's sinusoid position table (mmaction2
    registers it as a buffer when it is not learnable; OpenGVLab's files do not store it, they compute the same)."""
    return tuple(k for k, _ in backbone.named_buffers() if k == "pos_embed")


def build_mmaction_backbone(cfg: dict, pretrained: str | None, what: str, meta_safe: bool = False, key_map=None):
    """An mmaction2 backbone from its dict config, with mmaction's own init and an optional local checkpoint
    (``key_map``: names of another published layout -> mmaction2's)."""
    mmaction_models()
    from mmaction.registry import MODELS

    with meta_safe_build() if meta_safe else contextlib.nullcontext():
        backbone = MODELS.build(cfg)
    mmengine_init_weights(backbone)
    if pretrained:
        load_into(backbone, pretrained, what=what, ignore_prefixes=MMACTION_NON_BACKBONE, key_map=key_map,
                  replaced=fixed_tables(backbone),
                  expect="the mmaction2 recognizer checkpoint of this backbone"
                         + (" or OpenGVLab's own file" if key_map else "") + " (docs/model_zoo.md)")
    return backbone
