"""RAVAR-Bench: the benchmark suite for Referring Atomic Video Action Recognition."""
from .registry import list_methods, register_method, resolve_methods  # noqa: F401


def build_method(name, config_set="tiny", cfg_options=None, device=None):
    """The named method with the shared head (a torch module). See :mod:`ravar_bench.config`."""
    from .factory import build_method as _build

    return _build(name, config_set, cfg_options, device)


__version__ = "0.1.0"
