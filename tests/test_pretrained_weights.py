"""The pretrained starting points of the tiny configs (ravar_bench/pretraining/): the shipped files fit today's
tiny architectures, their manifest says what made them, a wrong file is refused naming the command that remakes
it, a short pretraining runs, resumes where it stopped, and the benchmark's instances start from the files."""
import hashlib
import json
import shutil

import pytest
import torch

from ravar_bench.config import load_config
from ravar_bench.encoders.checkpoint import CheckpointError
from ravar_bench.encoders.shipped_weights import (
    WEIGHTS_DIR,
    check_fits,
    file_name,
    load_shipped,
    read_manifest,
    save_shipped,
)
from ravar_bench.factory import build_from_config, build_method
from ravar_bench.pretraining import run as P
from ravar_bench.registry import resolve_methods

# the e12 recipe (README, "The committed leaderboard"): the actor pass's instance from the shipped weights
E12 = {"init.weights": "pretrained", "init.instances": "actor", "head.actor_pass": True, "head.actor_size": 32}
MAX_BYTES = 40 * 2 ** 20  # the ceiling for the whole shipped set


def _jobs():
    out = []
    for name in resolve_methods("all"):
        cfg = load_config(name, "tiny")
        if P.reads_pixels(cfg):
            out += [(name, s) for s in P.sizes_of(cfg)]
    return out


def _instance(name, size, device="meta"):
    from ravar_bench.factory import model_kwargs
    from ravar_bench.registry import METHODS

    _, cfg = P.instance_config(name, size)
    with torch.device(device):
        return METHODS.get(name)(**model_kwargs(cfg))


@pytest.mark.parametrize("name,size", _jobs())
def test_every_shipped_file_fits_the_current_tiny_architecture(name, size):
    """A method whose tiny architecture changed without its weights being remade fails here, with the command."""
    try:
        check_fits(_instance(name, size), name, size)
    except CheckpointError as e:
        pytest.fail(f"{name}@{size}: {e}")


def test_the_manifest_records_what_made_each_file_and_the_set_is_small():
    man = read_manifest()["files"]
    jobs = _jobs()
    assert sorted(man) == sorted(file_name(n, s) for n, s in jobs), "a shipped file without a manifest entry or the reverse"
    total = 0
    for fname, e in man.items():
        path = WEIGHTS_DIR / fname
        assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"], f"{fname}: sha256 differs from the manifest"
        assert e["command"] == f"ravar-bench pretrain --methods {e['method']}" and e["recipe"] == P.RECIPE, fname
        assert e.get("unfrozen", []) == P.unfrozen_keys(e["method"]), \
            f"{fname}: made with other towers frozen than today's; remake it with `{e['command']}`"
        assert e["corpus"]["generator_version"] and e["corpus"]["synth"]["seed"] == 1000 and e["steps"] > 0
        assert len(e["git_commit"]) == 40 and "git_dirty" in e, fname
        score = e["pretext_val"]  # the held-out score and, beside each figure, its constant / majority predictor's
        assert {"action_mAP", "action_mAP_chance", "shirt_acc", "shirt_acc_chance", "noun_acc"} <= set(score), fname
        total += path.stat().st_size
    assert total <= MAX_BYTES, f"the shipped weights take {total / 2 ** 20:.1f} MiB, more than 40"


def test_the_benchmark_instances_start_from_the_shipped_files():
    model = build_method("x3d", "tiny", {**E12, "init.instances": "all"})
    man = read_manifest()["files"]
    got = {r["file"].rsplit("/", 1)[-1]: r for r in model.loaded_weights}
    assert set(got) == {"x3d@64.safetensors", "x3d@32.safetensors"}  # the whole-clip instance and the actor's
    for fname, rec in got.items():
        assert rec["sha256"] == man[fname]["sha256"] and rec["set"] == rec["total"]
    from safetensors.torch import load_file

    sd = load_file(str(WEIGHTS_DIR / "x3d@64.safetensors"))
    own = model.method.state_dict()
    for k, v in sd.items():
        assert torch.equal(own[k], v.to(own[k].dtype)), k
    scratch = build_method("x3d", "tiny", {"init.weights": "scratch"})
    assert scratch.loaded_weights == []
    assert not torch.equal(scratch.method.state_dict()[next(iter(sd))], own[next(iter(sd))])


def test_a_file_of_another_architecture_is_refused_with_the_command(tmp_path):
    folder = tmp_path / "w"
    shutil.copytree(WEIGHTS_DIR, folder)
    from safetensors.torch import load_file, save_file

    path = folder / "x3d@64.safetensors"
    sd = load_file(str(path))
    key = next(k for k, v in sd.items() if v.dim() == 4 or v.dim() == 5)
    sd[key] = torch.zeros(*sd[key].shape[:-1], sd[key].shape[-1] + 1, dtype=sd[key].dtype)
    save_file(sd, str(path))
    with pytest.raises(CheckpointError, match=r"x3d: .*do not fit the current tiny architecture at 64 px.*"
                                              r"ravar-bench pretrain --methods x3d"):
        load_shipped(_instance("x3d", 64, "cpu"), "x3d", 64, folder)
    (folder / "x3d@64.safetensors").unlink()
    with pytest.raises(CheckpointError, match="do not exist; remake them with `ravar-bench pretrain --methods x3d`"):
        check_fits(_instance("x3d", 64), "x3d", 64, folder)


def test_a_missing_file_stops_the_cli_before_training(tmp_path, monkeypatch, capsys):
    """A method the manifest lists whose file is gone: exit code 2 with one line, before anything trains."""
    from ravar_bench import cli
    from ravar_bench.encoders import shipped_weights as shipped

    folder = tmp_path / "w"
    shutil.copytree(WEIGHTS_DIR, folder)
    (folder / "x3d@32.safetensors").unlink()
    for fn in (shipped.load_shipped, shipped.check_fits, shipped.ships):
        monkeypatch.setattr(fn, "__defaults__", (folder,))
    rc = cli.main(["run", "--methods", "x3d", "--epochs", "1", "--out", str(tmp_path / "out"), "--no-progress",
                   "--synth-movies", "2,1,1", "--cfg-options", *[f"{k}={v}" for k, v in E12.items()]])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "ravar-bench pretrain --methods x3d" in err[0], err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_a_method_the_manifest_does_not_list_starts_from_its_own_initialisation():
    from ravar_bench.encoders.shipped_weights import ships

    assert ships("x3d") and not ships("chance") and not ships("no_such_plugin")


def _source_at(root):
    from ravar_bench.data.refava import load_split
    from ravar_bench.engine.data_source import DataSource
    from ravar_bench.engine.provenance import data_identity

    src = DataSource(root, "synthetic")
    for split in ("train", "val", "test"):
        src.splits[split] = load_split(root, split)[0]
    src.provenance = data_identity("synthetic", root)
    return src


def test_a_short_pretraining_runs_writes_its_manifest_and_resumes_where_it_stopped(tiny_synth_root, tmp_path,
                                                                                    monkeypatch):
    from ravar_bench.engine.text_cache import TextFeatureCache

    src = _source_at(tiny_synth_root)
    tc = TextFeatureCache(dict(load_config("x3d", "tiny").text_encoder))
    whole = tmp_path / "whole"
    e = P.pretrain_one("x3d", 32, src, tc, whole, progress=False, epochs=2, code={"git_commit": "0" * 40})
    assert e["steps"] == 2 * -(-len(src.splits["train"]) // 16) and e["pretext_val"]["action_mAP"] >= 0
    man = read_manifest(whole)["files"]["x3d@32.safetensors"]
    assert man["sha256"] == hashlib.sha256((whole / "x3d@32.safetensors").read_bytes()).hexdigest()
    assert not (whole / ".partial").exists() or not any((whole / ".partial").iterdir())
    # interrupted in the second epoch: the rerun continues after epoch 1 and ends with the same weights
    calls = {"n": 0}
    real = P.pretext_loss
    steps_per_epoch = e["steps"] // 2

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 1:
            raise KeyboardInterrupt
        return real(*a, **k)

    cut = tmp_path / "cut"
    monkeypatch.setattr(P, "pretext_loss", failing)
    with pytest.raises(KeyboardInterrupt):
        P.pretrain_one("x3d", 32, src, tc, cut, progress=False, epochs=2, code={"git_commit": "0" * 40})
    assert (cut / ".partial" / "x3d@32.safetensors.pt").is_file() and not (cut / "x3d@32.safetensors").exists()
    monkeypatch.setattr(P, "pretext_loss", real)
    again = P.pretrain_one("x3d", 32, src, tc, cut, progress=False, epochs=2, code={"git_commit": "0" * 40})
    assert again["pretext_val"] == e["pretext_val"]
    assert (cut / "x3d@32.safetensors").read_bytes() == (whole / "x3d@32.safetensors").read_bytes()


def test_a_tower_the_benchmark_freezes_is_pretrained_and_then_frozen(tiny_synth_root, tmp_path):
    """e17: RefAtomNet's tiny BLIP-2 ViT (frozen in the benchmark, as the paper freezes EVA ViT-g) trains in the
    pretraining, so the benchmark freezes a pretrained tower, not a random one; the manifest says what was unfrozen."""
    from ravar_bench.engine.text_cache import TextFeatureCache

    assert P.unfrozen_keys("refatomnet") == ["blip2.freeze_vision"] and P.unfrozen_keys("x3d") == []
    src = _source_at(tiny_synth_root)
    tc = TextFeatureCache(dict(load_config("refatomnet", "tiny").text_encoder))
    e = P.pretrain_one("refatomnet", 32, src, tc, tmp_path, progress=False, epochs=1, code={"git_commit": "0" * 40})
    assert e["unfrozen"] == ["blip2.freeze_vision"]
    torch.manual_seed(P.RECIPE["seed"])
    start = _instance("refatomnet", 32, "cpu")  # the random start the pretraining began from, frozen as benchmarked
    vit = {k: v.clone() for k, v in start.state_dict().items() if ".vision_model." in k}
    assert vit and not any(p.requires_grad for n, p in start.named_parameters() if ".vision_model." in n)
    load_shipped(start, "refatomnet", 32, tmp_path)
    moved = [k for k, v in vit.items()  # the files are fp16: a tensor left alone comes back as its fp16 rounding
             if v.is_floating_point() and not torch.equal(start.state_dict()[k], v.half().to(v.dtype))]
    assert len(moved) > len(vit) // 2, f"the ViT did not train: {len(moved)} of {len(vit)} tensors moved"
    assert not any(p.requires_grad for n, p in start.named_parameters() if ".vision_model." in n)


def test_save_and_load_round_trip_in_fp16(tmp_path):
    m = _instance("x3d", 32, "cpu")
    save_shipped(m, "x3d", 32, {"note": "test"}, tmp_path)
    fresh = _instance("x3d", 32, "cpu")
    rec = load_shipped(fresh, "x3d", 32, tmp_path)
    assert rec["set"] == len(m.state_dict())
    for k, v in m.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(fresh.state_dict()[k], v.half().to(v.dtype)), k
    assert json.loads((tmp_path / "manifest.json").read_text())["files"]["x3d@32.safetensors"]["note"] == "test"


def test_the_prior_bias_puts_the_untrained_classifier_at_the_label_prior():
    cfg = load_config("x3d", "tiny", {"init.weights": "scratch"})
    model = build_from_config(cfg)
    prior = torch.zeros(80)
    prior[[11, 13, 79]] = torch.tensor([0.6, 0.3, 0.05])
    model.head.init_prior(prior)
    bias = model.head.cls[-1].bias
    assert torch.allclose(torch.sigmoid(bias[[11, 13, 79]]), prior[[11, 13, 79]], atol=1e-6)
    assert torch.sigmoid(bias[0]).item() == pytest.approx(1e-3, rel=1e-3)  # an absent class: the floor


def test_the_actor_only_start_leaves_the_whole_clip_instance_at_its_own_initialisation():
    """e12's start (init.instances="actor")."""
    torch.manual_seed(0)
    model = build_method("x3d", "tiny", E12)
    assert [r["file"].rsplit("/", 1)[-1] for r in model.loaded_weights] == ["x3d@32.safetensors"]
    torch.manual_seed(0)
    scratch = build_method("x3d", "tiny", {"init.weights": "scratch"})
    for k, v in scratch.method.state_dict().items():  # the same seed, the same random start
        assert torch.equal(model.method.state_dict()[k], v), k


def test_pretrain_sizes_makes_only_those_files_and_a_wrong_size_is_one_line(tmp_path, monkeypatch, capsys):
    """--sizes 32 remakes only the actor pass's files (what the default loads); a size no method is built for, or
    one that is not a number, stops with exit code 2 and one line, before any corpus is made."""
    from ravar_bench import cli
    from ravar_bench.engine import data_source

    made = []
    monkeypatch.setattr(data_source, "open_source", lambda *a, **k: type("S", (), {"root": tmp_path})())
    monkeypatch.setattr(P, "pretrain_one", lambda name, size, *a, **k: made.append((name, size)))
    monkeypatch.setattr(P, "read_manifest", lambda out: {"files": {file_name(n, s): {
        "pretext_val": read_manifest()["files"][file_name(n, s)]["pretext_val"], "steps": 1, "train_seconds": 1.0}
        for n, s in made}})
    P.pretrain(["x3d", "xclip"], out=tmp_path, progress=False, sizes=[32], echo=lambda line: None)
    assert made == [("x3d", 32), ("xclip", 32)]
    capsys.readouterr()  # the text encoder's loading bar of the call above
    for bad in ("48", "x", "0"):
        try:  # a flag argparse refuses exits through SystemExit(2), a value only the pretraining can judge returns 2
            rc = cli.main(["pretrain", "--methods", "x3d", "--sizes", bad, "--out", str(tmp_path), "--no-progress"])
        except SystemExit as e:
            rc = e.code
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and ("--sizes" in err[0]), (bad, err)
