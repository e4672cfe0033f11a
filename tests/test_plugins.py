"""Plug-in methods in one process: registration checks, config sources and fall-back, config-key checking,
entry points (a broken one skipped), a broken baseline skipped, and the leaderboard's mark for outside rows.
The installed, end-to-end versions of the three ways in: tests/test_packaging.py."""
import os
import sys
import textwrap

import pandas as pd
import pytest
import torch

from ravar_bench import registry
from ravar_bench.config import load_config
from ravar_bench.errors import UsageError
from ravar_bench.factory import build_from_config
from ravar_bench.method import Method
from ravar_bench.registry import list_methods, load_plugins, method_info, register_method, resolve_methods
from ravar_bench.report.leaderboard import plugin_note, render_markdown
from ravar_bench.testing import fake_batch

# A plug-in module as a user would write one: a method with one parameter, registered under a name and family.
_PLUGIN_SRC = textwrap.dedent("""\
    import torch
    from ravar_bench.method import Method
    from ravar_bench.registry import register_method

    @register_method("{name}", family="{family}")
    class Plugin(Method):
        def __init__(self, width: int = 4):
            super().__init__()
            self.c = torch.nn.Parameter(torch.zeros(width))
            self.feat_dim = width
    """)


class _Pool(Method):
    needs = frozenset({"text_emb"})

    def __init__(self, text_dim: int, width: int = 12):
        super().__init__()
        self.lin = torch.nn.Linear(text_dim, width)
        self.feat_dim = width

    def forward(self, batch):
        return self.lin(batch["text_emb"])


def test_registration_is_checked():
    with pytest.raises(UsageError, match="subclass of ravar_bench.method.Method"):
        register_method("plug_not_a_method", family="VTR")(torch.nn.Linear)
    register_method("plug_twice", family="VTR")(type("First", (_Pool,), {}))
    with pytest.raises(UsageError, match=r"'plug_twice' is registered twice: by .*First.* and by .*Second"):
        register_method("plug_twice", family="VTR")(type("Second", (_Pool,), {}))
    with pytest.raises(UsageError, match="register_family"):
        register_method("plug_fam", family="MyFamily")
    registry.register_family("MyFamily")
    register_method("plug_fam", family="MyFamily")(type("Fam", (_Pool,), {}))
    assert list_methods(family="MyFamily") == ["plug_fam"]
    fams = [method_info(n).family for n in list_methods()]
    assert fams.index("MyFamily") > fams.index("Backbone")  # a plug-in's family after the paper's


def test_wildcards_and_the_mmengine_registry_resolves_types():
    assert set(list_methods("refatomnet_wo_*")) == {"refatomnet_wo_alsaf", "refatomnet_wo_caaf",
                                                    "refatomnet_wo_catf", "refatomnet_wo_lsas"}
    assert resolve_methods("x3*,chance") == ["x3d", "chance"]
    with pytest.raises(UsageError, match="no registered method matches"):
        resolve_methods("zzz*")
    assert registry.METHODS.get("x3d") is method_info("x3d").cls
    assert "x3d" in resolve_methods("all") and "chance" not in resolve_methods("all")


def test_configs_dict_file_and_base_fallback(tmp_path):
    (tmp_path / "own_tiny.py").write_text("model = dict(type='plug_cfg', width=5)\ntrain = dict(epochs=2)\n")
    register_method("plug_cfg", family="VTR", configs={"tiny": str(tmp_path / "own_tiny.py"),
                                                       "full": {"model": {"width": 7}},
                                                       "wide": {"model": {"width": 9}}})(type("Cfg", (_Pool,), {}))
    tiny = load_config("plug_cfg")
    assert tiny.model.width == 5 and tiny.train.epochs == 2 and tiny.train.batch_size == 16  # over _base_/tiny.py
    assert load_config("plug_cfg", "full").model.width == 7
    assert load_config("plug_cfg", "tiny+wide").model.width == 9
    assert method_info("plug_cfg").config_sets() == ["tiny", "full", "wide"]

    register_method("plug_nocfg", family="VTR")(type("NoCfg", (_Pool,), {}))
    cfg = load_config("plug_nocfg")
    assert dict(cfg.model) == {"type": "plug_nocfg"} and cfg.data.img_size == 64
    model = build_from_config(cfg)
    assert model.method.lin.in_features == 384 and model.method.feat_dim == 12  # injected text_dim + default
    assert model(fake_batch(cfg, 2))["logits"].shape == (2, 80)

    class NeedsWidth(Method):
        def __init__(self, width: int):
            super().__init__()

    register_method("plug_nodefault", family="VTR")(NeedsWidth)
    with pytest.raises(UsageError, match=r"ships no tiny config and its constructor has no default for width"):
        load_config("plug_nodefault")
    assert load_config("plug_nodefault", cfg_options={"model.width": 3}).model.width == 3


def test_config_keys_no_code_reads_are_refused():
    with pytest.raises(UsageError, match=r"unknown config key 'train.bach_size'.*did you mean 'train.batch_size'"):
        load_config("x3d", cfg_options={"train.bach_size": 8})
    with pytest.raises(UsageError, match=r"'model.widht'.*did you mean 'model.width'"):
        load_config("plug_nocfg", cfg_options={"model.widht": 8})
    with pytest.raises(UsageError, match=r"unknown config key 'evall.n_boot'"):
        load_config("x3d", cfg_options={"evall.n_boot": 8})
    # keys that code reads: base keys, the head's and loss's parameters, constructor parameters and below them
    cfg = load_config("refatomnet", cfg_options={"train.batch_size": 8, "head.dropout": 0.0, "loss.box_weight": 1.0,
                                                 "text_encoder.path": "/x", "model.blip2.qformer.num_layers": 1})
    assert cfg.train.batch_size == 8 and cfg.model.blip2.qformer.num_layers == 1


def test_keys_of_a_method_config_are_checked_too(tmp_path):
    (tmp_path / "tiny.py").write_text("model = dict(type='plug_typo', widht=5)\n")
    (tmp_path / "full.py").write_text("model = dict(type='plug_typo')\ntrain = dict(bach_size=4)\n")
    register_method("plug_typo", family="VTR", config_dir=str(tmp_path))(type("Typo", (_Pool,), {}))
    with pytest.raises(UsageError, match=r"model.widht is not a parameter of Typo; did you mean model.width"):
        load_config("plug_typo")
    with pytest.raises(UsageError, match=r"full.py: unknown config key 'train.bach_size'.*'train.batch_size'"):
        load_config("plug_typo", "full")


def test_entry_points_found_lazily_and_a_broken_one_skipped(tmp_path, monkeypatch):
    dist = tmp_path / "fake_plugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [ravar_bench.methods]
        ep_good = ep_good_mod
        ep_broken = ep_no_such_module_xyz
        """))
    (tmp_path / "ep_good_mod.py").write_text(_PLUGIN_SRC.format(name="ep_good", family="SF"))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ep_good_mod" not in sys.modules
    assert method_info("ep_good").origin == "ep_good_mod"  # imported on demand, by its entry point's name
    assert "ep_no_such_module_xyz" not in str(registry.broken())  # only the one asked for was imported
    names = list_methods()
    assert "ep_good" in names and "x3d" in names
    assert "ModuleNotFoundError" in registry.broken()["plug-in ep_broken (ep_no_such_module_xyz)"]
    assert method_info("ep_good").external and not method_info("x3d").external


def test_a_broken_baseline_is_reported_and_skipped(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_baselines"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fine.py").write_text("VALUE = 1\n")
    (pkg / "bad.py").write_text("import torch_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.import_submodules("fake_baselines", "baseline")
    assert sys.modules["fake_baselines.fine"].VALUE == 1
    assert "torch_that_is_not_installed" in registry.broken()["baseline bad"]


def test_plugins_flag_errors_name_the_module():
    with pytest.raises(UsageError, match=r"plug-in 'no_such_plugin_mod' \(from --plugins\) could not be imported"):
        load_plugins("no_such_plugin_mod")


def test_leaderboard_marks_rows_from_outside_the_suite():
    rows = []
    for m, fam, origin in (("x3d", "AAL", "ravar_bench"), ("my_m", "VTR", "my_pkg.methods"),
                           ("odd", "MyFamily", "my_pkg.methods")):
        for split in ("val", "test"):
            rows.append({"method": m, "family": fam, "paper_name": "X3D" if m == "x3d" else None, "origin": origin,
                         "split": split, "seed": 0, "mIoU": 10.0, "mAP": 20.0, "AUROC": 50.0, "config_set": "tiny"})
    df = pd.DataFrame(rows)
    md = render_markdown(df)
    lines = [line for line in md.splitlines() if line.startswith("| ")][1:]
    assert [line.split("|")[2].strip() for line in lines] == ["X3D", "my_m†", "odd†"]
    assert [line.split("|")[1].strip() for line in lines] == ["AAL", "VTR", "MyFamily"]
    assert plugin_note(df) == ["† From outside the suite (plug-ins), scored by the same code: my_m (my_pkg.methods), "
                               "odd (my_pkg.methods).", ""]
    assert plugin_note(df[df["origin"] == "ravar_bench"]) == []


def test_a_configs_folder_next_to_the_plugin_module(tmp_path, monkeypatch):
    (tmp_path / "folder_plugin.py").write_text(_PLUGIN_SRC.format(name="plug_folder", family="Control"))
    (tmp_path / "configs" / "plug_folder").mkdir(parents=True)
    (tmp_path / "configs" / "plug_folder" / "full.py").write_text("model = dict(type='plug_folder', width=6)\n")
    (tmp_path / "configs" / "plug_folder" / "half.py").write_text("model = dict(width=3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_plugins("folder_plugin") == ["folder_plugin"]
    info = method_info("plug_folder")
    assert info.origin == "folder_plugin" and info.config_sets() == ["full", "half"]
    assert load_config("plug_folder", "full").model.width == 6
    assert load_config("plug_folder", "full+half").model.width == 3
    assert dict(load_config("plug_folder", "tiny").model) == {"type": "plug_folder"}  # no tiny: base + defaults


def test_a_config_file_as_the_method_registers_through_custom_imports(tmp_path, monkeypatch):
    monkeypatch.delenv(registry.CONFIG_METHODS_ENV, raising=False)  # restored (removed) after the test
    (tmp_path / "cfg_side_module.py").write_text(_PLUGIN_SRC.format(name="plug_from_cfg", family="Control"))
    cfg_file = tmp_path / "plug_from_cfg_tiny.py"
    cfg_file.write_text("custom_imports = dict(imports=['cfg_side_module'], allow_failed_imports=False)\n"
                        "model = dict(type='plug_from_cfg', width=5)\ntrain = dict(epochs=1)\n")
    assert resolve_methods(f"{cfg_file},chance") == ["plug_from_cfg", "chance"]
    cfg = load_config("plug_from_cfg", "tiny", {"train.batch_size": 2})
    assert cfg.model.width == 5 and cfg.train.epochs == 1 and cfg.train.batch_size == 2
    assert str(cfg_file) in os.environ[registry.CONFIG_METHODS_ENV]  # for launcher jobs
    bad = tmp_path / "bad_tiny.py"
    bad.write_text("custom_imports = dict(imports=['no_such_module_for_cfg'], allow_failed_imports=False)\n"
                   "model = dict(type='whatever')\n")
    with pytest.raises(UsageError, match="bad_tiny.py: the config could not be loaded"):
        resolve_methods(str(bad))
