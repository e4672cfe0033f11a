"""Files in the layouts researchers download, made here by the publishers' own code, loaded into the full configs
(shrunken through cfg_options or on the meta device) and checked value by value; a file of the wrong model is one
:class:`CheckpointError` line naming the layout it looks like (issue 24)."""
from __future__ import annotations

import io
import pickle

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
    import timm
    from transformers import DetrConfig, DetrForObjectDetection

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


def _lavis_keys(**kw) -> dict:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "make_key_lists", Path(__file__).parent / "data" / "checkpoint_keys" / "make_key_lists.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.lavis_blip2_keys(**kw)


def test_lavis_blip2_file_sets_every_tensor_of_the_full_refatomnet(tmp_path, caplog):
    """blip2_pretrained_opt2.7b.pth's names and shapes (tests/data/checkpoint_keys/lavis_blip2_opt.tsv) into the
    full config on the meta device: every tensor but the Q-Former text FFN (not in OPT / T5 files) is set."""
    from test_checkpoint_keys import _tensors, published

    keys = published("lavis_blip2_opt")
    assert keys == _lavis_keys()  # the committed list is what the generator writes
    path = tmp_path / "blip2_pretrained_opt2.7b.pth"
    torch.save({"model": _tensors(keys)}, path)
    with caplog.at_level("WARNING"):
        model = ravar_bench.build_method("refatomnet", "full", cfg_options={"model.blip2.pretrained": str(path)},
                                         device="meta")
    enc = model.method.visual
    rec = loaded_weights(enc)[0]
    text_ffn = enc.text_layers_not_in_checkpoints()
    assert "LAVIS BLIP-2" in rec["layout"] and rec["set"] == rec["total"] - len(text_ffn) > 0
    assert "not in BLIP-2 OPT / T5 checkpoints" in caplog.text


def test_lavis_blip2_values_reach_the_suite_names(tmp_path):
    """A small LAVIS-layout dict (the same module tree at small widths) loaded value by value; EVA's q / v biases
    become the qkv bias with zeros for k."""
    from ravar_bench.encoders.blip2 import Blip2VideoEncoder

    kw = dict(depth=2, width=32, mlp=64, patch=14, img=28, q_layers=2, hidden=16, inter=32, n_query=4, text_ffn=True)
    torch.manual_seed(0)
    sd = {k: torch.randn(s) for k, s in _lavis_keys(**kw).items()}
    path = tmp_path / "blip2_pretrained.pth"
    torch.save({"model": sd}, path)
    enc = Blip2VideoEncoder(vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                        image_size=28, patch_size=14),
                            qformer=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                         use_qformer_text_input=True), num_query_tokens=4, pretrained=str(path))
    own = enc.state_dict()
    assert loaded_weights(enc)[0]["set"] == loaded_weights(enc)[0]["total"] == len(own)
    eq = lambda a, b: torch.testing.assert_close(own[a], sd[b], rtol=0, atol=0)  # noqa: E731
    eq("vision_model.embeddings.class_embedding", "visual_encoder.cls_token")
    eq("vision_model.embeddings.patch_embedding.weight", "visual_encoder.patch_embed.proj.weight")
    eq("vision_model.encoder.layers.1.self_attn.projection.weight", "visual_encoder.blocks.1.attn.proj.weight")
    eq("vision_model.post_layernorm.weight", "ln_vision.weight")
    eq("qformer.layernorm.bias", "Qformer.bert.embeddings.LayerNorm.bias")
    eq("qformer.encoder.layer.0.crossattention.attention.key.weight",
       "Qformer.bert.encoder.layer.0.crossattention.self.key.weight")
    eq("qformer.encoder.layer.1.output.dense.weight", "Qformer.bert.encoder.layer.1.output.dense.weight")
    eq("query_tokens", "query_tokens")
    q, v = sd["visual_encoder.blocks.0.attn.q_bias"], sd["visual_encoder.blocks.0.attn.v_bias"]
    torch.testing.assert_close(own["vision_model.encoder.layers.0.self_attn.qkv.bias"],
                               torch.cat([q, torch.zeros(32), v]), rtol=0, atol=0)


def test_a_clip_file_given_to_blip2_is_one_line_refusal(tmp_path):
    from test_checkpoint_keys import _tensors, published

    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(_tensors(published("clip_vit_b32")), path)
    with pytest.raises(CheckpointError) as e:
        ravar_bench.build_method("refatomnet", "full", cfg_options={"model.blip2.pretrained": str(path)},
                                 device="meta")
    msg = str(e.value)
    assert "\n" not in msg and "this looks like an OpenAI / open_clip CLIP state dict" in msg and "sets 0 of" in msg


def opengvlab_vit_keys(depth=12, dim=768, mlp=3072, patch=16, tubelet=2, classes=710) -> dict:
    """key -> shape of OpenGVLab's VideoMAE V2 ViT (models/modeling_finetune.py at 29eab1e: PatchEmbed.proj
    Conv3d, blocks.N.{norm1, attn.{q_bias, v_bias, qkv (no bias), proj}, norm2, mlp.{fc1, fc2}}, fc_norm with
    mean pooling, head; the sinusoid pos_embed is a plain tensor, not in the state dict)."""
    out = {"patch_embed.proj.weight": (dim, 3, tubelet, patch, patch), "patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        b = f"blocks.{i}"
        out.update({f"{b}.norm1.weight": (dim,), f"{b}.norm1.bias": (dim,), f"{b}.attn.q_bias": (dim,),
                    f"{b}.attn.v_bias": (dim,), f"{b}.attn.qkv.weight": (3 * dim, dim),
                    f"{b}.attn.proj.weight": (dim, dim), f"{b}.attn.proj.bias": (dim,),
                    f"{b}.norm2.weight": (dim,), f"{b}.norm2.bias": (dim,), f"{b}.mlp.fc1.weight": (mlp, dim),
                    f"{b}.mlp.fc1.bias": (mlp,), f"{b}.mlp.fc2.weight": (dim, mlp), f"{b}.mlp.fc2.bias": (dim,)})
    out.update({"fc_norm.weight": (dim,), "fc_norm.bias": (dim,), "head.weight": (classes, dim),
                "head.bias": (classes,)})
    return out


def test_opengvlab_videomae2_file_loads_value_by_value(tmp_path):
    """vit_b_k710_dl_from_giant.pth ({'module': ...}) into videomae2_b's full config (one narrow block)."""
    small = {"model.backbone.embed_dims": 64, "model.backbone.depth": 1, "model.backbone.num_heads": 2}
    torch.manual_seed(0)
    sd = {k: torch.randn(s) for k, s in opengvlab_vit_keys(depth=1, dim=64, mlp=256).items()}
    path = tmp_path / "vit_b_k710_dl_from_giant.pth"
    torch.save({"module": sd}, path)
    model = ravar_bench.build_method("videomae2_b", "full", cfg_options={**small, "model.pretrained": str(path)})
    own = model.method.backbone.state_dict()
    torch.testing.assert_close(own["patch_embed.projection.weight"], sd["patch_embed.proj.weight"], rtol=0, atol=0)
    torch.testing.assert_close(own["blocks.0.mlp.layers.0.0.weight"], sd["blocks.0.mlp.fc1.weight"], rtol=0, atol=0)
    torch.testing.assert_close(own["blocks.0.mlp.layers.1.bias"], sd["blocks.0.mlp.fc2.bias"], rtol=0, atol=0)
    torch.testing.assert_close(own["blocks.0.attn.q_bias"], sd["blocks.0.attn.q_bias"], rtol=0, atol=0)
    torch.testing.assert_close(own["fc_norm.weight"], sd["fc_norm.weight"], rtol=0, atol=0)
    rec = model.loaded_weights[0]
    assert "OpenGVLab VideoMAE V2" in rec["layout"] and rec["set"] == rec["total"] - 1  # the sinusoid table


def test_opengvlab_videomae2_full_size_names_fit(tmp_path):
    from test_checkpoint_keys import _tensors

    path = tmp_path / "vit_b_k710_dl_from_giant.pth"
    torch.save({"module": _tensors(opengvlab_vit_keys())}, path)
    model = ravar_bench.build_method("videomae2_b", "full", cfg_options={"model.pretrained": str(path)}, device="meta")
    rec = model.loaded_weights[0]
    assert rec["set"] == rec["total"] - 1 == len(opengvlab_vit_keys()) - 2  # all but the table; head left out


# Singularity's full config (BEiT + BERT with cross-attention in its last 3 layers), narrow: 4 BERT layers, so
# Singularity's fusion_layer is 1 here (9 of 12 in the release)
SMALL_SINGULARITY = {
    "model.vision": {"patch_size": 16, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "intermediate_size": 64, "use_relative_position_bias": True, "layer_scale_init_value": 0.1},
    "model.text": {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2,
                   "intermediate_size": 64},
}


def _singularity_official(own: dict, n_text: int, pretraining: bool) -> tuple[dict, dict]:
    """A state dict in the layout of Singularity's released files (jayleicn/singularity models/xbert.py,
    model_retrieval_base.py, model_vqa.py): ONE BERT text encoder whose layers >= fusion_layer carry
    ``crossattention.self.{query,key,value}`` / ``crossattention.output.*``; the modules the suite does not build
    beside it (the QA answer decoder, BEiT's pooler, the frame position table; in pre-training files the MLM head
    and ``text_encoder.bert.*``, the retrieval projections, temperature and ITM head)."""
    g = torch.Generator().manual_seed(1)
    out, name_of = {}, {}
    for own_key, v in own.items():
        k = own_key
        if k.startswith("fusion.layer."):
            j, rest = k[len("fusion.layer."):].split(".", 1)
            k = f"text_encoder.encoder.layer.{n_text + int(j)}.{rest}"
        if pretraining and k.startswith("text_encoder."):
            k = "text_encoder.bert." + k[len("text_encoder."):]
        out[k] = torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
        name_of[own_key] = k
    out["temporal_embeddings"] = torch.zeros(1, 1, 1, 32)
    out["vision_encoder.pooler.layernorm.weight"] = torch.ones(32)
    if pretraining:
        out.update({"text_encoder.cls.predictions.bias": torch.zeros(30522), "vision_proj.weight": torch.zeros(8, 32),
                    "text_proj.weight": torch.zeros(8, 32), "temp": torch.tensor(0.07),
                    "itm_head.weight": torch.zeros(2, 32)})
    else:
        out["text_decoder.bert.encoder.layer.0.attention.self.query.weight"] = torch.zeros(32, 32)
    return out, name_of


@pytest.mark.parametrize("pretraining", [False, True], ids=["qa", "pretraining"])
def test_singularity_official_file_loads_value_by_value(tmp_path, pretraining):
    own = ravar_bench.build_method("singularity", "full", cfg_options=SMALL_SINGULARITY).method.state_dict()
    sd, name_of = _singularity_official(own, n_text=1, pretraining=pretraining)
    bert = "text_encoder.bert.encoder" if pretraining else "text_encoder.encoder"
    assert f"{bert}.layer.1.crossattention.self.key.weight" in sd and f"{bert}.layer.3.output.dense.weight" in sd
    path = tmp_path / "ckpt_best.pth"
    torch.save({"model": sd, "epoch": 9}, path)
    model = ravar_bench.build_method("singularity", "full", cfg_options={**SMALL_SINGULARITY,
                                                                         "model.pretrained": str(path)})
    got = model.method.state_dict()
    # the fusion layers hold the released text encoder's layers 1-3 (9-11 at full size), cross-attention included
    torch.testing.assert_close(got["fusion.layer.0.crossattention.self.key.weight"],
                               sd[f"{bert}.layer.1.crossattention.self.key.weight"], rtol=0, atol=0)
    torch.testing.assert_close(got["fusion.layer.2.output.dense.weight"], sd[f"{bert}.layer.3.output.dense.weight"],
                               rtol=0, atol=0)
    torch.testing.assert_close(got["text_encoder.encoder.layer.0.attention.self.query.weight"],
                               sd[f"{bert}.layer.0.attention.self.query.weight"], rtol=0, atol=0)
    for k in own:  # every tensor of the module, value by value, from its name in the released layout
        torch.testing.assert_close(got[k], sd[name_of[k]], rtol=0, atol=0, msg=k)
    [rec] = model.loaded_weights
    assert rec["set"] == rec["total"] and "Singularity's official file" in rec["layout"]


def test_a_beit_file_given_as_singularity_checkpoint_is_one_line_refusal(tmp_path):
    vision = ravar_bench.build_method("singularity", "full", cfg_options=SMALL_SINGULARITY).method.vision_encoder
    path = tmp_path / "beit.pth"
    torch.save(vision.state_dict(), path)
    with pytest.raises(CheckpointError) as e:
        ravar_bench.build_method("singularity", "full", device="meta",
                                 cfg_options={**SMALL_SINGULARITY, "model.pretrained": str(path)})
    msg = str(e.value)
    assert "\n" not in msg and "it sets 0 of the model's" in msg
    assert "point it at Singularity's official QA / pre-training file" in msg


class TrainingConfig(dict):
    """Stands for the config object a release pickles beside its weights (Singularity: an OmegaConf DictConfig)."""


def test_a_release_pickling_its_config_is_refused_with_the_way_out(tmp_path):
    own = ravar_bench.build_method("singularity", "full", cfg_options=SMALL_SINGULARITY).method.state_dict()
    sd, _ = _singularity_official(own, n_text=1, pretraining=False)
    path = tmp_path / "ckpt_best.pth"
    torch.save({"model": sd, "config": TrainingConfig(vit_type="beit"), "epoch": 9}, path)
    with pytest.raises(CheckpointError) as e:
        ravar_bench.build_method("singularity", "full", device="meta",
                                 cfg_options={**SMALL_SINGULARITY, "model.pretrained": str(path)})
    msg = str(e.value)
    assert "\n" not in msg and "cannot be read as weights only" in msg
    assert f"torch.save(torch.load('{path}', weights_only=False)['model'], 'weights.pth')" in msg
