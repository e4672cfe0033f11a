"""``ravar-bench check-weights``: each configured weights file loaded on the meta device, its layout and the tensors it
sets reported per method; a missing or wrong file is its row's error and exit code 2 (issue 24)."""
from __future__ import annotations

import pytest
import torch

import ravar_bench
from ravar_bench.cli import main
from ravar_bench.errors import UsageError
from ravar_bench.runner.check_weights import RANDOM_INIT, check_weights

pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")

# clip4clip's full config (ViT-B-32-quickgelu, open_clip's names) with a narrow one-layer tower
SMALL_CLIP = {"model.clip.vision": {"width": 64, "layers": 1, "patch_size": 32, "head_width": 32},
              "model.clip.text": {"width": 64, "layers": 1, "heads": 2}, "model.clip.embed_dim": 32}


@pytest.fixture
def bert(tmp_path):
    """The full configs' BERT folder (only its presence is checked here)."""
    d = tmp_path / "bert"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return str(d)


@pytest.fixture
def x3d_file(tmp_path):
    """An mmaction2 X3D-M recognizer checkpoint at full size: the published key list, random values."""
    from test_checkpoint_keys import published

    torch.manual_seed(0)
    sd = {k: (torch.zeros(s, dtype=torch.long) if k.endswith("num_batches_tracked") else torch.randn(s))
          for k, s in published("x3d").items()}
    path = tmp_path / "x3d_m_16x5x1.pth"
    torch.save({"meta": {"epoch": 1}, "state_dict": sd}, path)
    return str(path)


def test_an_open_clip_file_is_reported_with_its_layout_and_count(tmp_path, bert):
    tower = ravar_bench.build_method("clip4clip", "full", cfg_options=SMALL_CLIP).method.clip
    path = tmp_path / "open_clip_ViT-B-32.bin"
    torch.save(tower.state_dict(), path)
    [res] = check_weights(["clip4clip"], "full", {**SMALL_CLIP, "model.clip.pretrained": str(path),
                                                   "text_encoder.path": bert})
    [row] = res["rows"]
    assert res["ok"] and row["status"] == "OK" and row["key"] == "model.clip.pretrained"
    assert row["layout"] == "an OpenAI / open_clip CLIP state dict (visual.*, transformer.resblocks.*)"
    assert row["set"] == row["total"] == len(tower.state_dict())


def test_check_weights_command_ok_refused_and_random_init(capsys, bert, x3d_file):
    rc = main(["check-weights", "--methods", "x3d,chance", "--cfg-options", f"text_encoder.path={bert}",
               f"model.pretrained={x3d_file}"])
    out = capsys.readouterr().out
    n = len([k for k in __import__("test_checkpoint_keys").published("x3d")
             if k.startswith("backbone.") and not k.endswith("num_batches_tracked")])
    assert rc == 0, out
    assert "built on the CPU" not in out  # loaded on the meta device: no memory for the full-size model
    x3d_row = next(line for line in out.splitlines() if "model.pretrained=" in line)
    assert "an mmaction2 X3D checkpoint (backbone.conv1_s.*)" in x3d_row and x3d_row.endswith("OK")
    assert f"set {n} / {n} tensors" in x3d_row
    assert f"chance  ({RANDOM_INIT})" in out  # the control has no weights file
    assert out.strip().splitlines()[-1] == f"2 method(s): 1 OK, 1 {RANDOM_INIT}, 0 missing or refused"

    # the same X3D file given to I3D (model.pretrained is read by both): I3D's row is the strict loader's refusal
    rc = main(["check-weights", "--methods", "x3d,i3d", "--cfg-options", f"text_encoder.path={bert}",
               f"model.pretrained={x3d_file}"])
    out = capsys.readouterr().out
    i3d_row = out.splitlines()[out.splitlines().index("i3d") + 1]
    assert rc == 2
    assert "REFUSED: I3D (mmaction2) checkpoint" in i3d_row and "this looks like an mmaction2 X3D checkpoint" in i3d_row
    assert "1 missing or refused (i3d)" in out


def test_missing_files_are_rows_and_exit_2(capsys, tmp_path):
    gone = tmp_path / "gone.pth"
    rc = main(["check-weights", "--methods", "x3d", "--cfg-options", f"model.pretrained={gone}"])
    out = capsys.readouterr().out
    assert rc == 2
    assert f"  model.pretrained={gone}  MISSING: no such file or folder" in out
    assert "text encoder: MISSING text_encoder.path=None" in out  # the full configs' BERT folder is unset


def test_a_key_per_method_and_a_key_no_method_reads(bert, capsys):
    # model.clip.pretrained belongs to clip4clip, not to x3d: given to the one, left out of the other
    with pytest.raises(UsageError, match="unknown config key 'model.pretraind'.*did you mean 'model.pretrained'"):
        check_weights(["x3d", "clip4clip"], "full", {"model.pretraind": "/x"})
    rc = main(["check-weights", "--methods", "x3d", "--cfg-options", "model.clip.pretrained=/x"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "unknown config key 'model.clip.pretrained'" in err


def test_a_file_meta_cannot_load_falls_back_to_the_cpu_only_when_small(monkeypatch, bert, x3d_file):
    """A library that cannot load its file into meta tensors: the method is built on the CPU (X3D-M: 3.8M
    parameters), but a model above CPU_FALLBACK_GIB is not loaded into memory unasked (its row says how)."""
    from ravar_bench.runner import check_weights as cw

    real = cw.build_from_config

    def meta_refuses_files(cfg, device=None):
        if device == "meta" and cfg.model.get("pretrained"):
            raise NotImplementedError("Cannot copy out of meta tensor")
        return real(cfg, device=device)

    monkeypatch.setattr(cw, "build_from_config", meta_refuses_files)
    opts = {"text_encoder.path": bert, "model.pretrained": x3d_file}
    [res] = check_weights(["x3d"], "full", opts)
    assert res["ok"] and res["note"] == "built on the CPU (the meta device cannot load it)"
    assert res["rows"][0]["set"] == res["rows"][0]["total"]
    monkeypatch.setattr(cw, "CPU_FALLBACK_GIB", 0.001)  # X3D-M's ~0.014 GiB is now "too large"
    [res] = check_weights(["x3d"], "full", opts)
    assert not res["ok"] and "run check-weights --device cpu --methods x3d" in res["rows"][0]["status"]
