"""Files in the layouts researchers download, made here by the publishers' own code, loaded into the full configs
(shrunken through cfg_options or on the meta device) and checked value by value; a file of the wrong model is one
:class:`CheckpointError` line naming the layout it looks like (issue 24)."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

import ravar_bench
from ravar_bench.encoders.aal import MMACTION_NON_BACKBONE
from ravar_bench.encoders.checkpoint import CheckpointError, load_into, loaded_weights, read_state_dict, sha256
from ravar_bench.errors import UsageError

pytestmark = [pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning"),
              pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")]

# clip4clip's full config (ViT-B-32-quickgelu) with a narrow, one-layer tower: the same code and key names
SMALL_CLIP = {"model.clip.vision": dict(width=64, layers=1, patch_size=32, head_width=32),
              "model.clip.text": dict(width=64, layers=1, heads=2), "model.clip.embed_dim": 32}


def _small_clip4clip(**extra):
    return ravar_bench.build_method("clip4clip", "full", cfg_options={**SMALL_CLIP, **extra})


def _assert_values(module: torch.nn.Module, sd: dict, prefix: str = ""):
    own = module.state_dict()
    for k, v in sd.items():
        torch.testing.assert_close(own[k[len(prefix):]], v, rtol=0, atol=0, msg=k)


def test_openai_torchscript_clip_loads_value_by_value(tmp_path):
    """OpenAI's ViT-B/32.pt is a TorchScript archive of an OpenAI-layout CLIP (open_clip's CLIP has its names);
    it also keeps input_resolution / context_length / vocab_size among the weights, which are not ours."""
    torch.manual_seed(0)
    ref = _small_clip4clip().method.clip.eval()
    for p in ref.parameters():
        p.data.normal_()
    for name, val in (("input_resolution", 224), ("context_length", 77), ("vocab_size", 49408)):
        if name in ref.__dict__:  # open_clip keeps some as plain ints
            delattr(ref, name)
        ref.register_buffer(name, torch.tensor(val))
    img, txt = torch.randn(1, 3, 224, 224), torch.randint(0, 49408, (1, 77))
    traced = torch.jit.trace(ref, (img, txt), strict=False, check_trace=False)
    path = tmp_path / "ViT-B-32.pt"
    torch.jit.save(traced, str(path))
    model = _small_clip4clip(**{"model.clip.pretrained": str(path)})
    tower = model.method.clip
    want = {k: v for k, v in ref.state_dict().items()
            if k not in ("input_resolution", "context_length", "vocab_size")}
    _assert_values(tower, want)
    rec = model.loaded_weights  # what the result row records
    assert rec == loaded_weights(model.method)
    assert len(rec) == 1 and rec[0]["sha256"] == sha256(path) and rec[0]["set"] == rec[0]["total"] == len(want)
    assert "OpenAI TorchScript CLIP" in rec[0]["layout"]


def _numpy1_pickle(obj) -> bytes:
    """``obj`` pickled as numpy 1.x writes it: its module names (numpy.core.*), not numpy 2's (numpy._core.*)."""
    buf = io.BytesIO()
    pickle.dump(obj, buf, protocol=2)
    data = buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in data and b"numpy._core" not in data
    return data


def test_mmaction2_checkpoint_with_numpy1_meta_loads(tmp_path):
    from test_checkpoint_keys import MMENGINE_META, published

    keys = published("x3d")
    torch.manual_seed(0)
    sd = {k: torch.randn(s) if s else torch.randn(()) for k, s in keys.items()}
    sd = {k: (v.abs().long() if k.endswith("num_batches_tracked") else v) for k, v in sd.items()}
    path = tmp_path / "x3d_m.pth"
    torch.save({"meta": MMENGINE_META, "state_dict": sd}, path, pickle_protocol=2, _use_new_zipfile_serialization=True)
    # rewrite data.pkl inside torch's zip with numpy-1 module names (the torch tensors are stored beside it)
    import zipfile

    with zipfile.ZipFile(path) as z:
        items = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in items if n.endswith("data.pkl"))
    items[pkl] = items[pkl].replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in items[pkl] and b"numpy._core" not in items[pkl]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for n, b in items.items():
            z.writestr(n, b)
    model = ravar_bench.build_method("x3d", "full", cfg_options={"model.pretrained": str(path)}, device="meta")
    assert loaded_weights(model)[0]["set"] == loaded_weights(model)[0]["total"]
    backbone = ravar_bench.build_method("x3d", "full", device="meta").method.backbone.to_empty(device="cpu")
    load_into(backbone, path, what="x3d", ignore_prefixes=MMACTION_NON_BACKBONE)
    _assert_values(backbone, {k: v for k, v in sd.items() if k.startswith("backbone.")}, "backbone.")


def test_imagenet_resnet101_into_x3d_is_one_line_refusal(tmp_path):
    import timm

    with torch.device("meta"):
        keys = {k: tuple(v.shape) for k, v in timm.create_model("resnet101").state_dict().items()}
    path = tmp_path / "resnet101.pth"
    torch.save({k: torch.zeros(()).expand(s) for k, s in keys.items()}, path)
    with pytest.raises(CheckpointError) as e:
        ravar_bench.build_method("x3d", "full", cfg_options={"model.pretrained": str(path)}, device="meta")
    msg = str(e.value)
    assert isinstance(e.value, UsageError) and "\n" not in msg
    assert "this looks like an ImageNet ResNet-101 state dict" in msg and str(path) in msg
    assert "it sets 0 of the model's" in msg and "point it at the mmaction2 recognizer checkpoint of this backbone" in msg


def test_missing_checkpoint_file_is_a_usage_error(tmp_path):
    with pytest.raises(CheckpointError, match="no local file at"):
        read_state_dict(tmp_path / "nowhere.pth")


SMALL_DETR = dict(encoder_layers=1, decoder_layers=1, d_model=32, encoder_ffn_dim=64, decoder_ffn_dim=64,
                  encoder_attention_heads=2, decoder_attention_heads=2, num_queries=100, num_labels=91)


def test_timm_backbone_detr_folder_loads_value_by_value(tmp_path, monkeypatch):
    """facebook/detr-resnet-50's main revision: a timm ResNet backbone (config.json: use_timm_backbone); built
    here by transformers itself (a timm resnet18 to stay small) and saved with save_pretrained."""
    from transformers import DetrConfig, DetrForObjectDetection

    import timm

    def no_download(*a, **k):
        raise AssertionError("timm was asked for pretrained weights")

    torch.manual_seed(0)
    ref = DetrForObjectDetection(DetrConfig(use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False,
                                            **SMALL_DETR)).eval()
    for p in ref.parameters():
        p.data.normal_()
    ref.save_pretrained(tmp_path / "detr")
    monkeypatch.setattr(timm.models._builder, "load_pretrained", no_download)
    opts = {**SMALL_CLIP, "model.detector": "detr", "model.detr_pretrained": str(tmp_path / "detr"),
            **{f"model.detr.{k}": v for k, v in SMALL_DETR.items()}}
    model = ravar_bench.build_method("clip_detr", "full", cfg_options=opts)
    detr = model.method.detr
    assert detr.config.backbone_config.backbone == "resnet18"
    _assert_values(detr, ref.state_dict())
    rec = [r for r in model.loaded_weights if "DETR" in r["layout"]]
    assert rec and rec[0]["set"] == rec[0]["total"] and "timm backbone" in rec[0]["layout"]
