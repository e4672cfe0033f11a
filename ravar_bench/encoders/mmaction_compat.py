"""Make mmaction2 1.2.0 (PyPI) importable beside transformers 5; apply once, before importing mmaction.

Two defects of the released wheel (see docs/reference/stack-notes.md):
1. the wheel lacks ``mmaction/models/localizers/drn/`` that ``localizers/__init__.py`` imports
   (upstream open-mmlab/mmaction2#2714). We register an empty stand-in package for that one module;
   DRN is a temporal-grounding localiser nobody here builds.
2. ``mmaction.models.multimodal`` imports ``apply_chunking_to_forward``, which transformers 5 removed.
   mmaction's own switch ``WITH_MULTIMODAL = False`` skips that import.
"""
from __future__ import annotations

import importlib.util
import sys
import types

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    import mmaction.utils.dependency as dep

    dep.WITH_MULTIMODAL = False
    name = "mmaction.models.localizers.drn"
    if name not in sys.modules and importlib.util.find_spec("mmaction") is not None:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            drn = types.ModuleType(name)
            drn.__path__ = []  # a package, so "from .drn.drn import DRN" resolves to the submodule below
            sub = types.ModuleType(name + ".drn")

            class DRN:  # noqa: D401 - placeholder only reachable by a config that asks for DRN
                def __init__(self, *a, **k):
                    raise ImportError("mmaction2 1.2.0's wheel ships without the DRN localiser (mmaction2#2714)")

            sub.DRN = DRN
            drn.drn = sub
            sys.modules[name] = drn
            sys.modules[name + ".drn"] = sub
    _applied = True


def mmaction_models():
    """``mmaction.models`` with the fixes applied."""
    apply()
    import mmaction.models as models

    return models
