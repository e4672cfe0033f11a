"""Where the suite's own files are, and the reference tables it ships: the one place that knows these paths.

Imports nothing of ours (it is the bottom floor), so the registry, the engine, the report and the test helpers
all find the checkout, the configs and the paper's numbers the same way, in a checkout and in an install.
"""
from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

# The folder holding the ``ravar_bench`` package: the repository root in a checkout (or an editable install),
# site-packages in a regular install (where git finds no repository and provenance says "unknown").
REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # ravar_bench/ (its shipped weights live in weights/)

_HERE = resources.files("ravar_bench").joinpath("reference")


def _config_root() -> Path:
    """``ravar_bench/configs`` inside an installed package (mapped there from the repository's ``configs/`` by
    setup.cfg), else the checkout's top-level ``configs/`` (editable install, plain checkout)."""
    packaged = resources.files("ravar_bench").joinpath("configs")
    if packaged.is_dir():
        return Path(str(packaged))
    return REPO_ROOT / "configs"


CONFIG_ROOT = _config_root()
BASE_CONFIG_DIR = CONFIG_ROOT / "_base_"

PAPER_RESULTS_CSV = Path(str(_HERE.joinpath("paper_results.csv")))
# benchmarks/method_costs.csv in a checkout; an install ships it as ravar_bench/reference/method_costs.csv (setup.py)
_PACKAGED_COSTS = _HERE.joinpath("method_costs.csv")
COSTS_CSV = (Path(str(_PACKAGED_COSTS)) if _PACKAGED_COSTS.is_file()
             else REPO_ROOT / "benchmarks" / "method_costs.csv")


@functools.lru_cache(maxsize=None)
def _paper_results():
    import pandas as pd

    return pd.read_csv(PAPER_RESULTS_CSV, dtype={"table": str})


def paper_results():
    """The paper's published numbers (Tables 2-4), one row per (table, method): a fresh pandas DataFrame."""
    return _paper_results().copy()
