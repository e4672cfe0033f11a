"""The method registry: one decorator adds a method, from the suite or from anywhere else.

A method is a ``torch.nn.Module`` subclass of :class:`ravar_bench.method.Method` that turns a batch into pooled
features; ``@register_method("name", family=...)`` puts it in the mmengine registry ``METHODS``, through which a
config's ``model=dict(type=...)`` is resolved (``ravar_bench.config``). The extra facts (family, paper row, where
its configs are, where it came from) live in :class:`MethodInfo`, because mmengine's registry stores name -> class
only.

Where methods come from:
- the suite's own ``ravar_bench.baselines`` (the repository's top-level ``baselines/``, mapped into the package at
  install time); each module is imported on its own, so one that fails to import is reported by name
  (:func:`broken`) and breaks nothing else;
- modules named by ``--plugins a.b,c`` or ``$RAVAR_BENCH_PLUGINS`` (:func:`load_plugins`);
- the entry-point group ``ravar_bench.methods`` of any installed distribution, imported lazily: the entry point
  named like the requested method first, all of them only when a name is still unknown or for a listing; a
  broken one is reported by name and skipped;
- a config file given as a method (``--methods path/to/cfg.py``) whose ``custom_imports`` registers it
  (:func:`method_from_config_file`).

A method's configs: ``register_method(..., configs={"tiny": path_or_dict, ...})``, else ``configs/<name>/<set>.py``
next to its module (for the suite: the packaged ``ravar_bench/configs``); a set it lacks runs on the suite's base
config of that set with ``model=dict(type=name)`` and the constructor's defaults (``ravar_bench.config``).
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import importlib.util
import inspect
import logging
import os
import pkgutil
import sys
from importlib import metadata
from pathlib import Path

from mmengine.registry import Registry

from .errors import UsageError
from .reference import BASE_CONFIG_DIR, CONFIG_ROOT, REPO_ROOT, paper_results  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

METHODS = Registry("ravar_method")

# Table 2's families in the paper's order; "--methods all" means the suite's methods of exactly these.
TABLE2_FAMILIES = ("AAL", "VQA", "VTR", "SF", "VOS", "Ours")
FAMILIES = TABLE2_FAMILIES + ("Ablation", "Fusion", "Backbone", "Control")
_PLUGIN_FAMILIES: list[str] = []  # families declared by plug-ins (register_family), shown after the paper's

ENTRY_POINT_GROUP = "ravar_bench.methods"
PLUGINS_ENV = "RAVAR_BENCH_PLUGINS"
CONFIG_METHODS_ENV = "RAVAR_BENCH_CONFIG_METHODS"  # config files given as methods, for child processes
SUITE_ORIGIN = "ravar_bench"  # the origin of every method shipped with the suite



def _checkout_baselines() -> None:
    """In a plain checkout (nothing installed, ``tools/`` on the repo root) make the repository's ``baselines/``
    importable as ``ravar_bench.baselines``, as an install maps it; a no-op once installed."""
    if "ravar_bench.baselines" in sys.modules or importlib.util.find_spec("ravar_bench.baselines") is not None:
        return
    init = REPO_ROOT / "baselines" / "__init__.py"
    if not init.is_file():
        return
    spec = importlib.util.spec_from_file_location("ravar_bench.baselines", init,
                                                  submodule_search_locations=[str(init.parent)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)


_checkout_baselines()


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    name: str
    family: str
    cls: type
    paper_name: str | None  # the row name in paper_results.csv, None for methods the paper lacks
    config_dir: Path | None  # <dir>/<set>.py are its configs
    configs: dict = dataclasses.field(default_factory=dict)  # set -> Path | dict, given to register_method
    origin: str = SUITE_ORIGIN  # "ravar_bench" or the module that registered it

    @property
    def external(self) -> bool:
        """True for a method from outside the suite (a plug-in); the leaderboard marks its rows."""
        return self.origin != SUITE_ORIGIN

    @property
    def source_file(self) -> str:
        try:
            return inspect.getsourcefile(self.cls) or "?"
        except TypeError:
            return "?"

    def config_path(self, config_set: str) -> Path:
        """Where a file config of this set would be (whether or not it exists)."""
        src = self.configs.get(config_set)
        if isinstance(src, Path):
            return src
        return (self.config_dir or Path(".")) / f"{config_set}.py"

    def config_source(self, config_set: str) -> Path | dict | None:
        """The method's own config of a set (or overlay): a file, a dict, or None when it has none."""
        if config_set in _CONFIG_FILES.get(self.name, {}):
            return _CONFIG_FILES[self.name][config_set]
        if config_set in self.configs:
            return self.configs[config_set]
        p = self.config_path(config_set)
        return p if p.is_file() else None

    def config_sets(self) -> list[str]:
        """Every set and overlay it ships (file stems in its folder plus the configs it was registered with)."""
        names = set(self.configs) | set(_CONFIG_FILES.get(self.name, {}))
        if self.config_dir is not None and self.config_dir.is_dir():
            names |= {p.stem for p in self.config_dir.glob("*.py") if not p.name.startswith("_")}
        return sorted(names, key=lambda s: (s not in ("tiny", "full"), s != "tiny", s))


_INFO: dict[str, MethodInfo] = {}
_BROKEN: dict[str, str] = {}  # "baseline x" / "plug-in y (mod)" -> why it could not be imported
_CONFIG_FILES: dict[str, dict[str, Path]] = {}  # method -> {set: config file named on the command line}


def _origin(cls: type) -> str:
    mod = cls.__module__
    return SUITE_ORIGIN if mod == SUITE_ORIGIN or mod.startswith(SUITE_ORIGIN + ".") else mod


def _where(cls: type) -> str:
    try:
        src = inspect.getsourcefile(cls)
    except TypeError:
        src = None
    return f"{cls.__module__}.{cls.__qualname__}" + (f" ({src})" if src else "")


def _same_definition(a: type, b: type) -> bool:
    try:
        fa, fb = inspect.getsourcefile(a), inspect.getsourcefile(b)
    except TypeError:
        return False
    return fa is not None and fa == fb and a.__qualname__ == b.__qualname__


def register_family(name: str) -> str:
    """Declare a family of one's own for plug-in methods (placed after the paper's families in tables)."""
    if name not in FAMILIES and name not in _PLUGIN_FAMILIES:
        _PLUGIN_FAMILIES.append(name)
    return name


def families() -> tuple[str, ...]:
    return FAMILIES + tuple(_PLUGIN_FAMILIES)


def _module_dir(cls: type) -> Path | None:
    mod = sys.modules.get(cls.__module__)
    f = getattr(mod, "__file__", None)
    return Path(f).resolve().parent if f else None


def register_method(name: str, family: str, paper_name: str | None = None, config_dir: str | None = None,
                    configs: dict | None = None):
    """Class decorator: ``@register_method("x3d", family="AAL", paper_name="X3D")``, usable from any module.

    Args:
        name: the registry name (``--methods name``, ``model.type`` in its configs); a name registered by another
            class is an error naming both.
        family: one of Table 2's families, ``Ablation`` / ``Fusion`` / ``Backbone`` / ``Control``, or one a plug-in
            declared with :func:`register_family`.
        paper_name: the method's row in the paper's tables (``paper_results.csv``), None for methods it lacks.
        config_dir: where ``<set>.py`` configs live (default: ``configs/<name>/`` next to the module).
        configs: ``{"tiny": path_or_dict, "full": ..., "<overlay>": ...}`` (relative paths are read from the
            module's folder). A config dict, or a file without ``_base_``, is merged over the suite's base config
            of its set.

    Returns:
        the decorator; the class must subclass :class:`ravar_bench.method.Method`.
    """
    if family not in families():
        raise UsageError(f"method {name!r}: unknown family {family!r}; known: {', '.join(families())} "
                         f"(a plug-in declares its own with ravar_bench.registry.register_family({family!r}))")

    def deco(cls):
        from .method import Method  # noqa: PLC0415  (torch only when a method is registered)

        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise UsageError(f"@register_method({name!r}) on {cls!r}: a method must be a subclass of "
                             f"ravar_bench.method.Method")
        old = METHODS.module_dict.get(name)
        if old is not None and old is not cls:
            if _same_definition(old, cls):  # one file imported under two module names (baselines.x, ravar_bench.
                cls.method_name = name      # baselines.x) or reloaded: the same method, the first one stays
                return cls
            raise UsageError(f"method {name!r} is registered twice: by {_where(old)} and by {_where(cls)}")
        origin = _origin(cls)
        mdir = _module_dir(cls)
        if config_dir:
            cdir = Path(config_dir)
        elif origin == SUITE_ORIGIN:
            cdir = CONFIG_ROOT / name
        else:
            cdir = mdir / "configs" / name if mdir else None
        given = {}
        for cset, src in (configs or {}).items():
            if isinstance(src, dict):
                given[cset] = dict(src)
            else:
                p = Path(src)
                given[cset] = p if p.is_absolute() or mdir is None else (mdir / p)
        METHODS.register_module(name=name, module=cls, force=True)
        _INFO[name] = MethodInfo(name, family, cls, paper_name, cdir, given, origin)
        cls.method_name = name
        return cls

    return deco


def _report_broken(what: str, err: BaseException) -> None:
    msg = f"{type(err).__name__}: {err}".splitlines()[0]
    _BROKEN[what] = msg
    log.warning("%s could not be imported and is skipped: %s", what, msg)


def import_submodules(package: str, label: str) -> None:
    """Import every module of ``package``; one that fails is reported as "<label> <module>" and skipped."""
    pkg = importlib.import_module(package)
    for mod in pkgutil.iter_modules(pkg.__path__):
        try:
            importlib.import_module(f"{package}.{mod.name}")
        except Exception as e:  # one broken baseline must not take the others (or --list) down
            _report_broken(f"{label} {mod.name}", e)


_discovered = False


def discover() -> None:
    """Import every module of ``ravar_bench.baselines`` (once), then the ``$RAVAR_BENCH_PLUGINS`` modules.
    A baseline that fails to import is reported (:func:`broken`) and skipped."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    import_submodules("ravar_bench.baselines", "baseline")
    env = os.environ.get(PLUGINS_ENV, "")
    if env.strip():
        load_plugins(env, source=f"${PLUGINS_ENV}")
    for path in [x for x in os.environ.get(CONFIG_METHODS_ENV, "").split(os.pathsep) if x]:
        method_from_config_file(path)


_loaded_plugins: set[str] = set()


def load_plugins(modules: str | list[str] | None, source: str = "--plugins") -> list[str]:
    """Import plug-in modules (comma-separated names or a list) so that their decorators run. A module that
    cannot be imported was asked for explicitly: a UsageError naming it."""
    if not modules:
        return []
    names = [m.strip() for m in (modules.split(",") if isinstance(modules, str) else modules) if m.strip()]
    for m in names:
        if m in _loaded_plugins:
            continue
        try:
            importlib.import_module(m)
        except Exception as e:
            raise UsageError(f"plug-in {m!r} (from {source}) could not be imported: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
        _loaded_plugins.add(m)
    return names


_ep_loaded: set[str] = set()
_ep_scanned: tuple | None = None  # sys.path when all entry points were last imported


def _load_entry_points(name: str | None = None) -> None:
    """Import the ``ravar_bench.methods`` entry points not yet imported (only the one called ``name`` if given).
    A broken one is reported by name and skipped."""
    global _ep_scanned
    if name is None and _ep_scanned == tuple(sys.path):  # every entry point on this path is already imported
        return
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"{ep.name}={ep.value}"
        if key in _ep_loaded or (name is not None and ep.name != name):
            continue
        _ep_loaded.add(key)
        try:
            obj = ep.load()
        except Exception as e:  # a broken plug-in breaks nothing else
            _report_broken(f"plug-in {ep.name} ({ep.value})", e)
            continue
        if isinstance(obj, type) and obj not in METHODS.module_dict.values():
            _report_broken(f"plug-in {ep.name} ({ep.value})",
                           UsageError(f"{obj.__qualname__} is not registered with @register_method"))
    if name is None:
        _ep_scanned = tuple(sys.path)


def broken() -> dict[str, str]:
    """What could not be imported (baselines, plug-ins) -> the one-line reason."""
    return dict(_BROKEN)


def _all_names() -> list[str]:
    return list(_INFO)


def _unknown(name: str) -> UsageError:
    names = _all_names()
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5) or difflib.get_close_matches(name, names, 3, 0.0)
    hint = f"closest registered: {', '.join(close)}"
    br = [f"{k} ({v})" for k, v in _BROKEN.items() if name in k]
    extra = f"; note: {'; '.join(br)}" if br else ""
    return UsageError(f"unknown method {name!r}; {hint} (ravar-bench list shows all){extra}")


def method_info(name: str) -> MethodInfo:
    discover()
    if name not in _INFO:
        _load_entry_points(name)
    if name not in _INFO:
        _load_entry_points()
    if name not in _INFO:
        raise _unknown(name)
    return _INFO[name]


def method_class(name: str) -> type:
    """The class a config's ``model.type`` names, resolved through the mmengine registry."""
    method_info(name)  # discovery + a clear error for an unknown name
    return METHODS.get(name)


def _paper_row_order() -> dict[str, int]:
    out: dict[str, int] = {}
    for k, name in enumerate(paper_results()["method"]):
        out.setdefault(name, k)
    return out


def list_methods(pattern: str | None = None, family: str | None = None, table2_only: bool = False,
                 suite_only: bool = False) -> list[str]:
    """Registered method names (``pattern``: shell wildcards, e.g. ``"refatomnet*"``): families in Table 2's
    order, within a family the paper's row order (methods the paper lacks after those, in registration order).
    Lists installed plug-ins too (their entry points are imported here) unless ``suite_only``."""
    discover()
    if not suite_only:
        _load_entry_points()
    names = [n for n, i in _INFO.items() if (family is None or i.family == family)
             and (pattern is None or fnmatch.fnmatchcase(n, pattern)) and (not suite_only or not i.external)]
    if table2_only:
        names = [n for n in names if _INFO[n].family in TABLE2_FAMILIES]
    fam = {f: k for k, f in enumerate(families())}
    rows = _paper_row_order()
    reg = {n: k for k, n in enumerate(_INFO)}
    return sorted(names, key=lambda n: (fam.get(_INFO[n].family, len(fam)), rows.get(_INFO[n].paper_name, 10 ** 6),
                                        reg[n]))


def method_from_config_file(path: str | Path) -> str:
    """``--methods path/to/cfg.py``: load the mmengine config (its ``custom_imports`` registers the method; the
    file's folder is importable for that), check ``model.type`` and use the file as that method's config for
    every set in this process. Returns the method's name."""
    from mmengine.config import Config  # noqa: PLC0415

    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise UsageError(f"{path}: no such config file")
    discover()
    if str(p.parent) not in sys.path:
        sys.path.append(str(p.parent))  # so custom_imports may name a module lying beside the config
    try:
        cfg = Config.fromfile(str(p))
    except Exception as e:
        raise UsageError(f"{path}: the config could not be loaded: {type(e).__name__}: {e}".splitlines()[0]) from e
    mtype = (cfg.get("model") or {}).get("type")
    if not mtype:
        raise UsageError(f"{path}: no model=dict(type='<method name>') in the config")
    try:
        method_info(mtype)
    except UsageError as e:
        raise UsageError(f"{path}: model.type={mtype!r} is not registered (does custom_imports import the module "
                         f"that registers it?); {e}") from e
    _CONFIG_FILES[mtype] = {"tiny": p, "full": p}
    # launcher jobs and other child processes register it again from the environment (discover)
    known = [x for x in os.environ.get(CONFIG_METHODS_ENV, "").split(os.pathsep) if x]
    if str(p) not in known:
        os.environ[CONFIG_METHODS_ENV] = os.pathsep.join(known + [str(p)])
    return mtype


def _looks_like_path(part: str) -> bool:
    return part.endswith(".py") or os.sep in part or (os.altsep is not None and os.altsep in part)


def resolve_methods(spec: str) -> list[str]:
    """``"all"`` -> the suite's Table-2 methods; ``"a,b"`` -> those names (each checked); a family name -> its
    methods (plug-ins included); a wildcard (``"refatomnet_*"``) -> the matching names; ``path/to/cfg.py`` -> the
    method that config registers (:func:`method_from_config_file`)."""
    discover()
    out: list[str] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part == "all":
            out += list_methods(table2_only=True, suite_only=True)
        elif _looks_like_path(part):
            out.append(method_from_config_file(part))
        elif part in families():
            out += list_methods(family=part)
        elif any(c in part for c in "*?["):
            found = list_methods(part)
            if not found:
                raise UsageError(f"no registered method matches {part!r}")
            out += found
        else:
            out.append(method_info(part).name)
    return list(dict.fromkeys(out))
