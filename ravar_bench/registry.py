"""The method registry: one decorator adds a method, ``build_method`` builds it with the shared head.

A method is a ``torch.nn.Module`` subclass of :class:`ravar_bench.method.Method` that turns a batch
into pooled features. Registering it is the only step needed for ``--methods all`` (for the Table-2
families) or ``--methods <name>`` (for every family) to find it; its configs live at
``configs/<name>/tiny.py`` and ``configs/<name>/full.py`` unless the decorator names other files.

The mmengine ``Registry`` holds the classes so that a config's ``model=dict(type=...)`` resolves
through it, as in mmaction2; the extra metadata (family, paper row name, config paths) lives in
``MethodInfo`` because mmengine's registry stores only name -> class.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path

from mmengine.registry import Registry

METHODS = Registry("ravar_method")

# Table 2's families in the paper's order; "--methods all" means exactly these.
TABLE2_FAMILIES = ("AAL", "VQA", "VTR", "SF", "VOS", "Ours")
FAMILIES = TABLE2_FAMILIES + ("Ablation", "Fusion", "Backbone", "Control")

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_ROOT = REPO_ROOT / "configs"


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    name: str
    family: str
    cls: type
    paper_name: str | None  # the row name in paper_results.csv, None for methods the paper lacks
    config_dir: Path

    def config_path(self, config_set: str) -> Path:
        return self.config_dir / f"{config_set}.py"


_INFO: dict[str, MethodInfo] = {}


def register_method(name: str, family: str, paper_name: str | None = None, config_dir: str | None = None):
    """Class decorator: ``@register_method("x3d", family="AAL", paper_name="X3D")``."""
    if family not in FAMILIES:
        raise ValueError(f"method {name!r}: unknown family {family!r}; known: {', '.join(FAMILIES)}")

    def deco(cls):
        if name in _INFO and _INFO[name].cls is not cls:
            raise KeyError(f"method {name!r} is registered twice ({_INFO[name].cls.__module__} and {cls.__module__})")
        METHODS.register_module(name=name, module=cls, force=True)
        cdir = Path(config_dir) if config_dir else CONFIG_ROOT / name
        _INFO[name] = MethodInfo(name, family, cls, paper_name, cdir)
        cls.method_name = name
        return cls

    return deco


_discovered = False


def discover() -> None:
    """Import every module under ``baselines/`` so that their decorators run (once)."""
    global _discovered
    if _discovered:
        return
    import baselines  # noqa: PLC0415  (the package sits at the repo root, beside ravar_bench)

    for mod in pkgutil.iter_modules(baselines.__path__):
        importlib.import_module(f"baselines.{mod.name}")
    _discovered = True


def method_info(name: str) -> MethodInfo:
    discover()
    if name not in _INFO:
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(sorted(_INFO))}")
    return _INFO[name]


def _paper_row_order() -> dict[str, int]:
    import csv
    from importlib import resources

    text = resources.files("ravar_bench").joinpath("reference/paper_results.csv").read_text()
    out: dict[str, int] = {}
    for k, row in enumerate(csv.DictReader(text.splitlines())):
        out.setdefault(row["method"], k)
    return out


def list_methods(family: str | None = None, table2_only: bool = False) -> list[str]:
    """Registered method names: families in Table 2's order, within a family the paper's row order
    (methods the paper lacks after those, in registration order)."""
    discover()
    names = [n for n, i in _INFO.items() if (family is None or i.family == family)]
    if table2_only:
        names = [n for n in names if _INFO[n].family in TABLE2_FAMILIES]
    fam = {f: k for k, f in enumerate(FAMILIES)}
    rows = _paper_row_order()
    reg = {n: k for k, n in enumerate(_INFO)}
    return sorted(names, key=lambda n: (fam[_INFO[n].family], rows.get(_INFO[n].paper_name, 10 ** 6), reg[n]))


def resolve_methods(spec: str) -> list[str]:
    """``"all"`` -> every Table-2 method; ``"a,b"`` -> those names (each checked); a family name -> its methods."""
    discover()
    out: list[str] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part == "all":
            out += list_methods(table2_only=True)
        elif part in FAMILIES:
            out += list_methods(family=part)
        else:
            out.append(method_info(part).name)
    return list(dict.fromkeys(out))
