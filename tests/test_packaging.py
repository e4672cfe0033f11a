"""A regular install from outside the repository, and plug-in methods three ways (issue: install it anywhere).

In a temporary folder: a fresh venv that sees the suite's installed dependencies (a .pth line to this venv's
site-packages: offline, nothing downloaded), ``pip install --no-deps --no-build-isolation`` of a copy of the
repository (NOT editable), then the installed ``ravar-bench`` command, run from that folder, trains
``my_plugin`` beside ``chance`` on a small RefAVA-Synth:
1. a plug-in package with an entry point (``ravar_bench.methods``) and its own tiny config, pip-installed;
2. a module on PYTHONPATH named by ``--plugins``;
3. a config file given as the method, whose ``custom_imports`` registers it.
(all three in one run: each process start costs seconds). The leaderboard.md must hold each plug-in's row,
marked as coming from outside the suite.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYNTH = ["--synth-movies", "2,1,1", "--synth-clips", "3", "--epochs", "1", "--no-progress"]

METHOD_SRC = '''
import torch
from torch import nn

from ravar_bench.method import Method
from ravar_bench.registry import register_method


@register_method("{name}", family="VTR"{configs})
class MeanPool(Method):
    """Mean colour of the clip gated by the sentence: a method written outside the suite."""

    needs = frozenset({{"video", "text_emb"}})

    def __init__(self, text_dim: int, width: int = 32):
        super().__init__()
        self.v = nn.Linear(3, width)
        self.t = nn.Linear(text_dim, width)
        self.feat_dim = width

    def forward(self, batch):
        return self.v(batch["video"].mean(dim=(1, 3, 4))) * torch.sigmoid(self.t(batch["text_emb"]))
'''


def _copy_repo(dst: Path) -> None:
    """The repository's files as a clone has them (tracked + not ignored), without the committed leaderboard."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    for f in files:
        src = ROOT / f
        if f.startswith("leaderboard/") or not src.is_file():
            continue
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / f)


def _pip(venv_py: Path, *args, cwd: Path) -> None:
    r = subprocess.run([str(venv_py), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                        "--disable-pip-version-check", "-q", *args], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv with the suite pip-installed from a copy of the repository (non-editable), shared by the cases."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the repository's files")
    base = tmp_path_factory.mktemp("install")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the suite's dependencies (torch, mmengine, ...) from this environment: reused, never downloaded
    (site / "_ravar_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    src = base / "src"
    _copy_repo(src)
    _pip(py, str(src), cwd=base)
    work = base / "work"  # every command runs here: outside the repository
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAVAR_BENCH_PLUGINS")}
    env.update(RAVAR_CACHE=str(base / "cache"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    return {"base": base, "py": py, "cli": venv / "bin" / "ravar-bench", "site": site, "work": work, "env": env}


def _run(inst, *args, env=None, check=True):
    r = subprocess.run([str(inst["cli"]), *args], cwd=inst["work"], env=env or inst["env"], capture_output=True,
                       text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _row(md: Path, name: str) -> str:
    rows = [line for line in md.read_text().splitlines() if line.startswith("|") and f" {name}†" in line]
    assert rows, md.read_text()[:3000]
    return rows[0]


def test_regular_install_has_no_top_level_baselines_and_finds_its_configs(installed):
    site = installed["site"]
    assert not (site / "baselines").exists()
    assert (site / "ravar_bench" / "baselines" / "x3d.py").is_file()
    assert (site / "ravar_bench" / "configs" / "_base_" / "tiny.py").is_file()
    assert (site / "ravar_bench" / "reference" / "method_costs.csv").is_file()  # shipped from benchmarks/
    r = subprocess.run([str(installed["py"]), "-c", "import ravar_bench.registry as r, ravar_bench.report.leaderboard as l; "
                        "print(r.CONFIG_ROOT); print(r.method_info('x3d').config_source('tiny')); print(l.COSTS_CSV)"],
                       cwd=installed["work"], env=installed["env"], capture_output=True, text=True, check=True)
    assert all(line.startswith(str(site)) for line in r.stdout.split()), r.stdout
    r = _run(installed, "run", "--methods", "nosuch", check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "unknown method 'nosuch'" in r.stderr and "closest registered:" in r.stderr


@pytest.fixture(scope="module")
def plugin_run(installed):
    """The three ways in, in ONE run (each process start costs seconds):
    - my_plugin: a pip-installed package with an entry point and its own tiny config;
    - my_local: a module on PYTHONPATH named by --plugins, with no config (base config + constructor defaults);
    - my_cfg: a config file given as the method, whose custom_imports registers it."""
    base = installed["base"]
    pkg = base / "plugin_src"
    (pkg / "my_ravar_plugin").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "my-ravar-plugin"
        version = "0.1"

        [project.entry-points."ravar_bench.methods"]
        my_plugin = "my_ravar_plugin.methods"

        [tool.setuptools.package-data]
        my_ravar_plugin = ["*.py"]
        """))
    (pkg / "my_ravar_plugin" / "__init__.py").write_text("")
    (pkg / "my_ravar_plugin" / "methods.py").write_text(
        METHOD_SRC.format(name="my_plugin", configs=', configs={"tiny": "my_plugin_tiny.py"}'))
    # no _base_: merged over the suite's configs/_base_/tiny.py
    (pkg / "my_ravar_plugin" / "my_plugin_tiny.py").write_text("model = dict(type='my_plugin', width=24)\n")
    _pip(installed["py"], str(pkg), cwd=base)

    mods = base / "my_methods"
    mods.mkdir()
    (mods / "my_local.py").write_text(METHOD_SRC.format(name="my_local", configs=""))
    cdir = base / "cfg_method"  # the module lies beside the config: importable for custom_imports
    cdir.mkdir()
    (cdir / "my_cfg_method.py").write_text(METHOD_SRC.format(name="my_cfg", configs=""))
    (cdir / "my_cfg_tiny.py").write_text(
        "custom_imports = dict(imports=['my_cfg_method'], allow_failed_imports=False)\n"
        "model = dict(type='my_cfg', width=8)\n")
    out = base / "out"
    env = {**installed["env"], "PYTHONPATH": str(mods)}
    r = _run(installed, "run", "--plugins", "my_local", "--methods",
             f"my_plugin,my_local,{cdir / 'my_cfg_tiny.py'},chance", "--out", str(out), *SYNTH, env=env)
    return {"out": out, "log": r.stderr, "md": (out / "leaderboard.md").read_text()}


def test_entry_point_plugin_with_its_own_config(plugin_run):
    out = plugin_run["out"]
    row = _row(out / "leaderboard.md", "my_plugin")
    assert row.split("|")[1].strip() == "VTR"  # under its family in Table 2
    assert "From outside the suite (plug-ins), scored by the same code: " in plugin_run["md"]
    assert "my_plugin (my_ravar_plugin.methods)" in plugin_run["md"]
    cfg = (out / "runs" / "my_plugin" / "seed0" / "config.py").read_text()
    assert "width=24" in cfg and "batch_size" in cfg  # its own config over the suite's base config
    assert "| Control" in plugin_run["md"]  # the suite's chance control beside it


def test_plugins_flag_without_a_config(plugin_run):
    _row(plugin_run["out"] / "leaderboard.md", "my_local")
    assert "my_local: no tiny config of its own" in plugin_run["log"]
    assert "my_local (my_local)" in plugin_run["md"]


def test_a_config_path_as_the_method(plugin_run):
    _row(plugin_run["out"] / "leaderboard.md", "my_cfg")
    assert "width=8" in (plugin_run["out"] / "runs" / "my_cfg" / "seed0" / "config.py").read_text()
    assert "my_cfg (my_cfg_method)" in plugin_run["md"]
