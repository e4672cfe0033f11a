"""The ``ravar-bench`` command: bad usage is one line on stderr and exit code 2, never a traceback; the
subcommands and the tools/ scripts are the same code."""
import subprocess
import sys
from pathlib import Path

import pytest

from ravar_bench.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def _usage_error(capsys, argv) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_unknown_method_names_the_closest(capsys):
    err = _usage_error(capsys, ["run", "--methods", "nosuch"])
    assert "unknown method 'nosuch'" in err and "closest registered:" in err
    err = _usage_error(capsys, ["run", "--methods", "x3d,clip4clipp"])
    assert "closest registered: clip4clip" in err


def test_bad_options_configs_and_data_roots(capsys, tmp_path):
    err = _usage_error(capsys, ["run", "--methods", "x3d", "--cfg-options", "train.bach_size=8"])
    assert "did you mean 'train.batch_size'" in err
    err = _usage_error(capsys, ["run", "--methods", "x3d", "--config-set", "tiny+nope"])
    assert "no config overlay 'nope'" in err
    err = _usage_error(capsys, ["run", "--methods", "x3d", "--config-set", "huge"])
    assert "config_set must be one of" in err
    err = _usage_error(capsys, ["run", "--methods", "x3d", "--data", "refava", "--data-root", str(tmp_path)])
    assert "no annotations/ folder" in err
    err = _usage_error(capsys, ["run", "--methods", "x3d", "--data", "refava"])
    assert "needs --data-root" in err
    err = _usage_error(capsys, ["run", "--methods", str(tmp_path / "missing_cfg.py")])
    assert "no such config file" in err
    err = _usage_error(capsys, ["run", "--plugins", "no_such_plugin_mod", "--methods", "x3d"])
    assert "no_such_plugin_mod" in err
    err = _usage_error(capsys, ["leaderboard", str(tmp_path)])
    assert "no results.csv" in err


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--no-such-flag"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --no-such-flag" in err


def test_list_shows_family_paper_row_source_and_configs(capsys):
    assert main(["list", "refatomnet*"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("refatomnet "))
    assert "Ours" in line and "RefAtomNet" in line and "refatomnet.py" in line and "tiny, full" in line
    assert "released" in line  # the overlay
    assert "x3d" not in out


def test_every_subcommand_has_help_and_a_tool():
    ap = build_parser()
    for name, (_, _, _, tool) in COMMANDS.items():
        with pytest.raises(SystemExit) as e:
            ap.parse_args([name, "--help"])
        assert e.value.code == 0
        if tool:
            text = (ROOT / "tools" / tool).read_text()
            assert f'tool_main("{name}"' in text


def test_tool_script_exits_2_without_traceback():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "run_bench.py"), "--methods", "nosuch"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "run_bench.py: error: unknown method" in r.stderr


@pytest.mark.parametrize("option, says", [
    ("head.box_mode=bogus", "head.box_mode='bogus' is not allowed; it must be one of 'regress', 'candidates'"),
    ("head.box_activation=relu", "head.box_activation='relu' is not allowed; it must be one of 'sigmoid', 'none'"),
    ("train.precision=fp13", "train.precision='fp13' is not allowed; it must be one of 'auto', 'fp32'"),
    ("train.batch_size=0", "train.batch_size=0 is not allowed; it must be an integer >= 1"),
    ("train.batch_size=abc", "train.batch_size='abc' is not allowed; it must be an integer >= 1"),
    ("train.lr=-1", "train.lr=-1 is not allowed; it must be a number > 0"),
    ("train.grad_accum=0", "train.grad_accum=0 is not allowed"),
    ("data.num_frames=0", "data.num_frames=0 is not allowed; it must be an integer >= 1"),
    ("eval.average=median", "eval.average='median' is not allowed; it must be one of 'weighted', 'macro'"),
    ("eval.iou_gate=2", "eval.iou_gate=2 is not allowed; it must be None or a number >= 0 and <= 1"),
    ("model.temporal=lstm", "clip4clip: temporal must be 'meanP' or 'seqTransf', got 'lstm'"),  # a method option
])
def test_a_wrong_config_value_is_one_line_before_training(capsys, tmp_path, monkeypatch, option, says):
    """Every kind of config value (the head's modes, precision, the optimiser's numbers, the clip's sizes, the
    protocol, a method's own option) is checked when the configs are loaded, before any data or training."""
    import ravar_bench.runner.bench as bench

    monkeypatch.setattr(bench, "run_benchmark", lambda *a, **k: pytest.fail("work started on a wrong value"))
    err = _usage_error(capsys, ["run", "--methods", "x3d,clip4clip", "--out", str(tmp_path / "o"),
                                "--cfg-options", option])
    assert says in err and "--cfg-options" in err or "model." in option, err
    assert not (tmp_path / "o").exists()


def test_base_detected_by_parsing_the_file_not_by_a_substring(tmp_path):
    """A method config that only mentions ``_base_`` in a comment or string is merged over the base config (as
    mmengine reads the file: a top-level ``_base_ = ...`` assignment), not taken as standing alone."""
    from ravar_bench.config import load_config
    from ravar_bench.method import Method
    from ravar_bench.registry import register_method

    (tmp_path / "tiny.py").write_text("# no _base_ here\nmodel = dict(type='test_base_probe')\ntrain = dict(epochs=1)\n")

    @register_method("test_base_probe", family="Control", config_dir=str(tmp_path))
    class BaseProbe(Method):
        def __init__(self):
            super().__init__()
            self.feat_dim = 4

    cfg = load_config("test_base_probe", "tiny")
    assert cfg.train.epochs == 1 and cfg.train.batch_size == 16 and cfg.data.img_size == 64  # from the base


def _parse_error(capsys, argv) -> str:
    """An argparse type/range error: one line on stderr, exit code 2."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, words", [
    (["--epochs", "0"], ["--epochs", "expected an integer >= 1, got 0"]),
    (["--epochs", "-3"], ["--epochs", "got -3"]),
    (["--epochs", "two"], ["--epochs", "'two'"]),
    (["--seeds", "-1"], ["--seeds", "seeds must be >= 0, got -1"]),
    (["--seeds", "0,0"], ["--seeds", "seed 0 is given more than once"]),
    (["--seeds", "0,x"], ["--seeds", "non-negative integers"]),
    (["--methods", ""], ["--methods", "names no method"]),
    (["--methods", ","], ["--methods", "names no method (',')"]),
])
def test_mistaken_flags_are_one_line_when_parsed(capsys, argv, words):
    err = _parse_error(capsys, ["run", *argv])
    assert all(w in err for w in words), err


def test_out_naming_a_file_or_an_unwritable_folder(capsys, tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("not a folder")
    err = _parse_error(capsys, ["run", "--methods", "chance", "--out", str(f)])
    assert f"{f} is a file, not a folder" in err
    err = _parse_error(capsys, ["run", "--methods", "chance", "--out", str(f / "sub")])
    assert f"{f} is a file" in err
    # /proc refuses new files even to root (a chmod'ed folder would not stop root)
    err = _parse_error(capsys, ["run", "--methods", "chance", "--out", "/proc/ravar_out"])
    assert "/proc/ravar_out cannot be created: /proc is not writable" in err
    for cmd in (["prepare", "--videos", "v", "--annotations", "a"], ["convert", "--data-root", "d"]):
        assert f"{f} is a file" in _parse_error(capsys, [*cmd, "--out", str(f)])


def test_mistaken_flag_rewrites_nothing(tmp_path):
    """`--methods ,` through the tool script: exit 2, one line, leaderboard.md and results.csv untouched."""
    out = tmp_path / "run"
    out.mkdir()
    files = {n: (out / n) for n in ("leaderboard.md", "results.csv")}
    for p in files.values():
        p.write_text("earlier\n")
    for flags in (["--methods", ","], ["--methods", "chance", "--epochs", "0"], ["--methods", "chance", "--seeds", "1,1"]):
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "run_bench.py"), *flags, "--out", str(out)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        assert all(p.read_text() == "earlier\n" for p in files.values())
        assert sorted(x.name for x in out.iterdir()) == sorted(files)
