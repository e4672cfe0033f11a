"""mmaction2 video backbones for the AAL baselines: built from their dict configs with mmaction's own init and
an optional local checkpoint. The method base they share is :class:`ravar_bench.model.bases.TextFusedVideoMethod`."""
from __future__ import annotations

import contextlib

from .checkpoint import load_into, meta_safe_build, mmengine_init_weights
from .mmaction_compat import mmaction_models

# Keys of an mmaction2 recognizer checkpoint that are not the backbone's and that the RAVAR model replaces.
MMACTION_NON_BACKBONE = ("cls_head.", "data_preprocessor.")


def build_mmaction_backbone(cfg: dict, pretrained: str | None, what: str, meta_safe: bool = False):
    """An mmaction2 backbone from its dict config, with mmaction's own init and an optional local checkpoint."""
    mmaction_models()
    from mmaction.registry import MODELS

    with meta_safe_build() if meta_safe else contextlib.nullcontext():
        backbone = MODELS.build(cfg)
    mmengine_init_weights(backbone)
    if pretrained:
        load_into(backbone, pretrained, what=what, ignore_prefixes=MMACTION_NON_BACKBONE,
                  expect="the mmaction2 recognizer checkpoint of this backbone (docs/model_zoo.md)")
    return backbone
