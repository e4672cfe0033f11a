"""Packages: ravar_bench and its subpackages, plus the repository's top-level baselines/ and configs/ installed
inside it as ravar_bench.baselines and ravar_bench.configs (package_dir in setup.cfg). setup.cfg holds the rest;
this file exists because setup.cfg's ``packages = find:`` cannot add packages that live elsewhere, and because
the costs table (benchmarks/method_costs.csv, written by benchmarks/method_throughput.py) must ship inside the
package (ravar_bench/reference/) for an installed leaderboard to find it."""
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED_FROM_ELSEWHERE = {"benchmarks/method_costs.csv": "ravar_bench/reference/method_costs.csv"}


class BuildPy(build_py):
    def run(self):
        super().run()
        for src, dst in SHIPPED_FROM_ELSEWHERE.items():
            if (HERE / src).is_file():
                out = Path(self.build_lib) / dst
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(HERE / src, out)


setup(packages=find_packages(include=["ravar_bench", "ravar_bench.*"]) + ["ravar_bench.baselines", "ravar_bench.configs"],
      cmdclass={"build_py": BuildPy})
