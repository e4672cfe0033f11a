"""A configured local file or folder that is missing stops the run before anything starts: one line, exit 2,
every method's missing files named at once (issue 24)."""
from __future__ import annotations

import pytest

from ravar_bench.cli import main
from ravar_bench.encoders.checkpoint import CheckpointMissingError
from ravar_bench.runner.preflight import check_local_files, configured_files


def test_configured_files_finds_every_pretrained_key():
    model = {"type": "x", "pretrained": "/a", "clip": {"pretrained": "/b", "model_name": "ViT"}, "llm_tokenizer": "/c",
             "detr_pretrained": None}
    assert configured_files(model) == [("model.pretrained", "/a"), ("model.clip.pretrained", "/b"),
                                       ("model.llm_tokenizer", "/c")]


def test_missing_files_of_every_method_in_one_error(tmp_path):
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text("{}")
    opts = {"text_encoder.path": str(bert), "model.pretrained": str(tmp_path / "nowhere.pth")}
    with pytest.raises(CheckpointMissingError) as e:
        check_local_files(["i3d", "x3d", "chance"], "full", lambda name: opts)
    msg = str(e.value)
    assert "1 configured local file(s) missing" in msg and "for i3d, x3d" in msg and "nowhere.pth" in msg
    # the BERT folder of the full configs is a configured folder too
    with pytest.raises(CheckpointMissingError, match=r"text_encoder\.path=None .*needs a local BERT folder.* for i3d"):
        check_local_files(["i3d"], "full", lambda name: {})


def test_run_with_missing_files_is_one_line_and_exit_2(tmp_path, capsys):
    rc = main(["run", "--methods", "i3d,x3d", "--config-set", "full", "--out", str(tmp_path / "out"), "--no-progress",
               "--cfg-options", f"model.pretrained={tmp_path / 'gone.pth'}"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "gone.pth" in err and "for i3d, x3d" in err and "Traceback" not in err


def test_wrong_model_file_stops_the_run_before_training(tmp_path, capsys):
    """An ImageNet ResNet-101 state dict given to X3D's full config: one line naming the layout, exit 2, no rows."""
    import timm
    import torch

    with torch.device("meta"):
        keys = {k: tuple(v.shape) for k, v in timm.create_model("resnet101").state_dict().items()}
    path = tmp_path / "resnet101_a1h-36d3f2aa.pth"
    torch.save({k: torch.zeros(()).expand(s) for k, s in keys.items()}, path)
    out = tmp_path / "out"
    rc = main(["run", "--methods", "x3d", "--config-set", "full", "--out", str(out), "--no-progress", "--epochs", "1",
               "--cfg-options", f"model.pretrained={path}", "text_encoder.type=minilm", "text_encoder.dim=384"])
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if "error:" in line]  # (the MiniLM load draws a progress bar)
    assert rc == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert "this looks like an ImageNet ResNet-101 state dict" in err and "it sets 0 of the model's" in err
    assert not list(out.glob("**/*.json")) or not any("mAP" in p.read_text() for p in out.glob("**/*.json"))
