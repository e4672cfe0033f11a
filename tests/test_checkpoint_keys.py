"""Checkpoint key mapping against the key names and shapes of the published layouts (tests/data/checkpoint_keys/,
written by make_key_lists.py there from the publishers' own model code; no weights are stored or downloaded).

Each test writes a file in the published container, with every listed key at its listed shape (zero tensors
expanded from one element, so a 350 MB checkpoint is a few hundred bytes on disk), and loads it into our full
config's module on the meta device with ``load_into``, as the method's ``pretrained=`` does.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

import ravar_bench
from ravar_bench.encoders.aal import MMACTION_NON_BACKBONE
from ravar_bench.encoders.checkpoint import CheckpointError, CheckpointShapeError, load_into

# loading into the meta device copies nothing (torch says so once per tensor): only the key mapping is under test
pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")
KEYS = Path(__file__).resolve().parent / "data" / "checkpoint_keys"
# what mmengine's CheckpointHook keeps in 'meta': numpy scalars and arrays among plain values
MMENGINE_META = {"epoch": 100, "iter": np.int64(93850), "seed": np.int64(1234), "mmengine_version": "0.7.3",
                 "hook_msgs": {"best_score": np.float64(0.7318), "last_ckpt": "work_dirs/epoch_100.pth"},
                 "dataset_meta": {"classes": np.array([0, 1, 2])}, "time": "20220812_123456"}


def published(name: str) -> dict:
    """key -> shape of the published file ``name`` (its header lines say where the list came from)."""
    out = {}
    for line in (KEYS / f"{name}.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split("\t")
        out[key] = tuple(int(s) for s in shape.split(",") if s)
    assert out, name
    return out


def _tensors(keys: dict, prefix: str = "") -> dict:
    return {prefix + k: torch.zeros(()).expand(s) for k, s in keys.items()}


def _build_with(name: str, option: str, path: Path, caplog):
    """The method's full config with ``option=path`` (its own pretrained= path), on the meta device; the log records
    of the load."""
    caplog.clear()
    with caplog.at_level("INFO"):
        model = ravar_bench.build_method(name, "full", cfg_options={option: str(path)}, device="meta")
    return model, [r.getMessage() for r in caplog.records if "missing keys" in r.getMessage() or
                   "not loaded on purpose" in r.getMessage()]


def _save(tmp_path, obj, name="ckpt.pth") -> Path:
    p = tmp_path / name
    torch.save(obj, p)
    assert p.stat().st_size < 1_000_000  # zero tensors expanded from one element: no weights on disk
    return p


@pytest.mark.parametrize("name", ["i3d", "x3d", "mvitv2_b", "videomae2_b"])
def test_mmaction2_published_checkpoints_load_into_the_full_backbone(name, tmp_path, caplog):
    keys = published(name)
    # the synthetic extra: a preprocessor that saved its mean / std (mmaction2 1.2.0's does not: non-persistent)
    sd = {**_tensors(keys), "data_preprocessor.mean": torch.zeros(3, 1, 1, 1), "data_preprocessor.std": torch.ones(3, 1, 1, 1)}
    path = _save(tmp_path, {"meta": MMENGINE_META, "state_dict": sd})
    # through the method's own model.pretrained: nothing missing or unexpected, the classifier left out on purpose
    model, msgs = _build_with(name, "model.pretrained", path, caplog)
    n_ignored = sum(k.startswith("cls_head.") for k in keys) + 2
    assert len(msgs) == 1 and f"{n_ignored} keys not loaded on purpose" in msgs[0], msgs
    backbone = model.method.backbone
    rep = load_into(backbone, path, what=name, ignore_prefixes=MMACTION_NON_BACKBONE, strict=True)
    assert rep["missing"] == [] and rep["unexpected"] == []
    assert sorted(rep["ignored"]) == sorted([k for k in keys if k.startswith("cls_head.")] +
                                            ["data_preprocessor.mean", "data_preprocessor.std"])
    # every listed backbone tensor has the shape the full config builds
    own = backbone.state_dict()
    assert {k[len("backbone."):]: s for k, s in keys.items() if k.startswith("backbone.")} == \
        {k: tuple(v.shape) for k, v in own.items()}


def test_hiera_published_checkpoint_loads_into_the_full_backbone(tmp_path, caplog):
    keys = published("hiera_b")
    path = _save(tmp_path, {"model_state": _tensors(keys)})
    model, msgs = _build_with("hiera_b", "model.pretrained", path, caplog)
    assert len(msgs) == 1 and "2 keys not loaded on purpose" in msgs[0], msgs
    backbone = model.method.backbone
    rep = load_into(backbone, path, what="Hiera checkpoint", ignore_prefixes=("head.",), strict=True)
    assert rep["missing"] == [] and rep["unexpected"] == []
    assert sorted(rep["ignored"]) == sorted(k for k in keys if k.startswith("head."))


@pytest.mark.parametrize("prefix", ["", "module.", "clip."])
def test_clip_checkpoint_prefixes_are_stripped(prefix, tmp_path, caplog):
    """open_clip's file has no prefix; a DDP-saved one has ``module.``, CLIP4Clip's own ``clip.``."""
    keys = published("clip_vit_b32")  # ViT-B-32-quickgelu differs only in its activation: the same keys
    path = _save(tmp_path, _tensors(keys, prefix))
    model, msgs = _build_with("clip4clip", "model.clip.pretrained", path, caplog)
    assert msgs == []  # nothing missing, unexpected or left out
    tower = model.method.clip
    rep = load_into(tower, path, strip_prefixes=("module.", "clip."), what="open_clip checkpoint", strict=True)
    assert (rep["missing"], rep["unexpected"], rep["ignored"]) == ([], [], [])
    assert rep["set"] == rep["total"] == len(keys)  # every tensor of the tower set from the file


def test_missing_unexpected_and_shape_report(tmp_path, caplog):
    keys = published("x3d")
    backbone = ravar_bench.build_method("x3d", "full", device="meta").method.backbone
    sd = _tensors(keys)
    gone = ["backbone.conv1_s.conv.weight", "backbone.layer4.0.conv2.bn.running_var"]
    for k in gone:
        sd.pop(k)
    sd["backbone.extra_block.weight"] = torch.zeros(4)
    path = _save(tmp_path, {"meta": MMENGINE_META, "state_dict": sd})
    rep = load_into(backbone, path, what="x3d", ignore_prefixes=MMACTION_NON_BACKBONE, strict=False)
    assert sorted(rep["missing"]) == sorted(k[len("backbone."):] for k in gone)
    assert rep["unexpected"] == ["extra_block.weight"]
    assert "2 missing keys" in caplog.text and "1 unexpected keys" in caplog.text
    # strict, the default: two tensors left random is one error naming the file, its layout and the counts
    n = len(backbone.state_dict()) - sum(k.endswith("num_batches_tracked") for k in backbone.state_dict())
    with pytest.raises(CheckpointError, match=rf"mmaction2 recognizer checkpoint \(backbone\.\*, cls_head\.\*\); it sets {n - 2} of the model's {n} "
                                              rf"tensors \(2 would stay random, e\.g\. \['conv1_s\.conv\.weight'"):
        load_into(backbone, path, what="x3d", ignore_prefixes=MMACTION_NON_BACKBONE)
    # a tensor of another shape (a checkpoint for another width) is an error naming the key, never a skip
    sd = _tensors(keys)
    sd["backbone.conv1_s.conv.weight"] = torch.zeros(()).expand(32, 3, 1, 3, 3)
    with pytest.raises(CheckpointShapeError, match=r"conv1_s\.conv\.weight.*\(32, 3, 1, 3, 3\).*\(24, 3, 1, 3, 3\)"):
        load_into(backbone, _save(tmp_path, {"meta": MMENGINE_META, "state_dict": sd}, "wide.pth"), what="x3d")


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_meta_with_code_is_refused(tmp_path):
    """numpy scalars in 'meta' load without a full unpickle; anything that would run code does not."""
    path = _save(tmp_path, {"meta": {**MMENGINE_META, "hook": _Payload()}, "state_dict": _tensors(published("x3d"))})
    backbone = ravar_bench.build_method("x3d", "full", device="meta").method.backbone
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        load_into(backbone, path, what="x3d", ignore_prefixes=MMACTION_NON_BACKBONE)


def _sam_names(meta_keys: dict) -> dict:
    """Meta's key -> shape list, renamed by the loader's map (a tuple: one tensor, two SamModel names)."""
    from ravar_bench.baselines.clip_sam import meta_sam_key

    out = {}
    for k, shape in meta_keys.items():
        names = meta_sam_key(k)
        for name in (names if isinstance(names, tuple) else (names,)):
            out[name] = shape
    return out


def test_meta_sam_vit_b_names_are_sammodels():
    """Meta's sam_vit_b_01ec64.pth (key list from segment_anything's own build_sam_vit_b) renamed by the loader
    is exactly transformers' SamModel (the sam-vit-base config clip_sam's full config builds), shape by shape."""
    from transformers import SamConfig, SamModel

    with torch.device("meta"):
        hf = {k: tuple(v.shape) for k, v in SamModel(SamConfig()).state_dict().items()}
    mapped = _sam_names(published("sam_meta_vit_b"))
    assert sorted(set(hf) - set(mapped)) == [] and sorted(set(mapped) - set(hf)) == []
    assert {k: tuple(s) for k, s in mapped.items()} == hf


SMALL_SAM = {"vision": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                        "global_attn_indexes": [1], "mlp_dim": 128}}


def test_meta_sam_file_loads_into_clip_sam_value_by_value(tmp_path):
    """A file in Meta's layout (segment_anything's key list at a test size, random values, no container) loads into
    CLIP+SAM's full config: every tensor of the SamModel set from the file."""
    from ravar_bench.baselines.clip_sam import meta_sam_key

    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) for k, s in published("sam_meta_small").items()}
    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(sd, path)
    opts = {"model.sam": SMALL_SAM, "model.sam_pretrained": str(path),
            "model.clip.vision": {"width": 64, "layers": 1, "patch_size": 32, "head_width": 32},
            "model.clip.text": {"width": 64, "layers": 1, "heads": 2}, "model.clip.embed_dim": 32}
    model = ravar_bench.build_method("clip_sam", "full", cfg_options=opts)
    own = model.method.sam.state_dict()
    n = 0
    for k, v in sd.items():
        names = meta_sam_key(k)
        for name in (names if isinstance(names, tuple) else (names,)):
            torch.testing.assert_close(own[name], v, rtol=0, atol=0, msg=k)
            n += 1
    assert n == len(own)
    [rec] = [r for r in model.loaded_weights if r["file"].endswith("sam_vit_b_01ec64.pth")]
    assert rec["set"] == rec["total"] == len(own) and rec["layout"].startswith("Meta's SAM file")


def test_a_clip_file_given_as_sam_is_one_line_refusal(tmp_path):
    from ravar_bench.encoders.checkpoint import CheckpointError

    path = tmp_path / "ViT-B-16.bin"
    torch.save({"visual.conv1.weight": torch.zeros(2, 3, 16, 16), "token_embedding.weight": torch.zeros(4, 2),
                "transformer.resblocks.0.ln_1.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError) as e:
        ravar_bench.build_method("clip_sam", "full", cfg_options={"model.sam_pretrained": str(path)}, device="meta")
    msg = str(e.value)
    assert "\n" not in msg and "this looks like an OpenAI / open_clip CLIP state dict" in msg
    assert "it sets 0 of the model's" in msg and "point it at Meta's SAM file (sam_vit_b_01ec64.pth)" in msg
