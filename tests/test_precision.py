"""Mixed precision and the full-config training path (ravar_bench/engine/precision.py, issue 15).

- every registered method: a bf16 autocast training step of its tiny config (frozen towers stored in bf16, as the
  engine does) gives a loss within 2% of the fp32 step on the same batch, and finite gradients;
- gradient accumulation gives the full batch's gradient (checked against autograd on the whole batch);
- fp16's GradScaler skips a step with an inf gradient; ``auto`` is fp32 on a CPU; loader settings; activation
  checkpointing leaves the gradients unchanged; the engine trains and evaluates a model under bf16 + accumulation.
"""
import json

import pytest
import torch
from torch import nn

from ravar_bench.config import load_config
from ravar_bench.data.dataset import loader_kwargs
from ravar_bench.encoders.frozen_cache import frozen_caches
from ravar_bench.engine import accumulation as A
from ravar_bench.engine import precision as P
from ravar_bench.factory import build_from_config
from ravar_bench.registry import list_methods
from ravar_bench.testing import ACTOR32, fake_batch


def _no_dropout(model: nn.Module) -> None:
    """Dropout off (and stochastic depth), and no reuse of frozen towers' outputs across steps (the bf16 step must
    run the bf16 tower, not read what the fp32 step stored), so that the two precisions compute the same thing."""
    for _, cache in frozen_caches(model):
        cache.enabled = False
    for m in model.modules():
        for attr in ("p", "drop_prob", "dropout", "attention_dropout", "hidden_dropout", "dropout_rate"):
            if isinstance(getattr(m, attr, None), float) and (attr != "p" or isinstance(m, nn.modules.dropout._DropoutNd)):
                setattr(m, attr, 0.0)


def _step_loss(model, batch, prec: P.MixedPrecision) -> float:
    torch.manual_seed(1)
    model.zero_grad(set_to_none=True)
    with prec.autocast():
        loss = model(batch)["losses"]["loss"]
    prec.backward(loss)
    return float(loss.detach())


@pytest.mark.parametrize("name", list_methods())
def test_bf16_step_matches_fp32(name):
    torch.manual_seed(0)
    cfg = load_config(name, "tiny")
    model = build_from_config(cfg).train()
    _no_dropout(model)
    batch = fake_batch(cfg, 2)
    ref = _step_loss(model, batch, P.MixedPrecision("fp32", "cpu"))
    bf16 = P.prepare_model(model, dict(precision="bf16"), "cpu")
    frozen = P.frozen_towers(model)
    assert all(p.dtype == torch.bfloat16 for _, m in frozen for p in m.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)  # fp32 master weights
    got = _step_loss(model, batch, bf16)
    assert abs(got - ref) <= 0.02 * abs(ref), f"{name}: bf16 loss {got:.5f} vs fp32 {ref:.5f}"
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(g.dtype == torch.float32 for g in grads)


def test_cpu_conv3d_gradients_stay_right_under_bf16():
    """The CPU bf16 Conv3d weight-gradient case (see precision.conv3d_in_fp32): after prepare_model, the gradient
    equals fp32's; computed independently with autograd in fp32 on the same weights and input."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(32, 16, (5, 7, 7), padding=(2, 3, 3), stride=(1, 2, 2), bias=False))
    x = torch.randn(2, 32, 4, 16, 16)
    ref = torch.autograd.grad(net(x).sum(), net[0].weight)[0]
    prec = P.prepare_model(net, dict(precision="bf16"), "cpu")
    with prec.autocast():
        y = net(x)
    got = torch.autograd.grad(y.float().sum(), net[0].weight)[0]
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-3)
    import copy  # a copy's convolutions call the copy's weights

    twin = copy.deepcopy(net)
    with torch.no_grad():
        twin[0].weight.zero_()
        assert twin(x).abs().sum() == 0 and net(x).abs().sum() > 0
    from mmcv.cnn.bricks.wrappers import Conv3d as MmcvConv3d  # i3d's and X3D's convolutions: switched as well

    wrapped = nn.Sequential(MmcvConv3d(2, 2, 3))
    assert P.conv3d_in_fp32(wrapped) == 1 and P.conv3d_in_fp32(wrapped) == 0


def test_auto_is_fp32_on_cpu_and_names_are_checked():
    assert P.resolve_precision("auto", "cpu") == "fp32"
    assert P.resolve_precision(None, "cpu") == "fp32"
    assert P.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="train.precision"):
        P.resolve_precision("fp8", "cpu")
    assert load_config("refatomnet", "tiny").train.precision == "auto"
    assert load_config("refatomnet", "full").train.num_workers > 0


def test_grad_accumulation_equals_the_full_batch_gradient():
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    x, y = torch.randn(8, 5), torch.randn(8, 3)
    full = torch.autograd.grad(nn.functional.mse_loss(lin(x), y), lin.weight)[0]
    prec, accum = P.MixedPrecision("fp32", "cpu"), 4
    assert A.optimizer_steps(8 // 2, accum) == 1 and A.optimizer_steps(5, 2) == 3
    lin.zero_grad()
    boundaries = []
    for i in range(4):  # 4 micro-batches of 2
        prec.backward(nn.functional.mse_loss(lin(x[2 * i:2 * i + 2]), y[2 * i:2 * i + 2]), accum)
        boundaries.append(A.is_step_boundary(i, 4, accum))
    assert boundaries == [False, False, False, True]
    torch.testing.assert_close(lin.weight.grad, full)
    assert [A.is_step_boundary(i, 5, 2) for i in range(5)] == [False, True, False, True, True]  # partial group steps


def test_fp16_scaler_skips_an_inf_step():
    torch.manual_seed(0)
    lin = nn.Linear(3, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    prec = P.MixedPrecision("fp16", "cpu")
    assert prec.scaler.is_enabled() and prec.dtype == torch.float16
    w0 = lin.weight.detach().clone()
    prec.backward(lin(torch.randn(4, 3)).sum() * float("inf"))
    assert prec.step(opt, list(lin.parameters())) is False
    torch.testing.assert_close(lin.weight, w0)  # skipped, scale lowered
    opt.zero_grad()
    prec.backward(lin(torch.ones(4, 3)).sum())
    assert prec.step(opt, list(lin.parameters())) is True
    # d/dw sum(w.x + b) over 4 rows of ones = 4 per weight; SGD lr 0.1 -> w0 - 0.4 (the scale is undone)
    torch.testing.assert_close(lin.weight.detach(), w0 - 0.4)
    assert not P.MixedPrecision("bf16", "cpu").scaler.is_enabled()


def test_loader_settings():
    kw = loader_kwargs(dict(num_workers=3, prefetch_factor=4))
    assert kw == dict(num_workers=3, pin_memory=torch.cuda.is_available(), persistent_workers=True, prefetch_factor=4)
    assert loader_kwargs(dict(num_workers=0, pin_memory=True)) == dict(num_workers=0, pin_memory=True)


def test_frozen_towers_cast_and_checkpointing_keeps_gradients():
    cfg = load_config("refatomnet", "tiny")
    batch = fake_batch(cfg, 2)
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = build_from_config(cfg).train()
        _no_dropout(model)
        prec = P.prepare_model(model, dict(precision="fp32", activation_checkpointing=ckpt), "cpu")
        assert model.method.visual.qformer.is_gradient_checkpointing is ckpt
        _step_loss(model, batch, prec)
        grads.append(model.method.visual.query_tokens.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])
    torch.manual_seed(0)
    model = build_from_config(load_config("refatomnet", "tiny", ACTOR32))
    prec = P.prepare_model(model, dict(precision="bf16"), "cpu")
    names = [n for n, _ in P.frozen_towers(model)]
    # the ViTs (the actor pass's instance has its own); the Q-Formers and everything else train in fp32
    assert names == ["method.visual.vision_model", "actor.visual.vision_model"]
    assert model.method.visual.vision_model.embeddings.patch_embedding.weight.dtype == torch.bfloat16
    assert model.method.visual.qformer.layernorm.weight.dtype == torch.float32
    model.eval()
    with torch.no_grad(), P.autocast_for(prec):
        out = model(batch)
    assert torch.isfinite(out["logits"]).all()


def test_engine_trains_in_bf16_with_accumulation(tiny_synth_root, tmp_path):
    from ravar_bench.data.synthetic import SynthConfig
    from ravar_bench.engine.data_source import open_source
    from ravar_bench.engine.text_cache import TextFeatureCache
    from ravar_bench.engine.trainer import train_and_evaluate
    from tests.conftest import TINY_SYNTH

    src = open_source("synthetic", synth=SynthConfig(**TINY_SYNTH), cache_dir=str(tiny_synth_root.parent),
                      progress=False)
    cfg = load_config("fusion_add", "tiny", cfg_options={
        "train.epochs": 1, "train.batch_size": 4, "train.precision": "bf16", "train.grad_accum": 2,
        "eval.n_boot": 0, "eval.swap_control": False})
    rows = train_and_evaluate(cfg, src, TextFeatureCache(dict(cfg.text_encoder)), seed=0, out_dir=tmp_path,
                              progress=False, splits=("val",))
    assert rows and all(0.0 <= rows[0][k] <= 100.0 for k in ("mAP", "AUROC"))
    assert rows[0]["precision"] == "bf16" and rows[0]["text_path"] == "qformer"  # the row says what ran
    st = torch.load(tmp_path / "runs" / "fusion_add" / "seed0" / "last.pt", weights_only=True)
    n_batches = -(-rows[0]["train_instances"] // 4)
    assert st["sched"]["last_epoch"] == A.optimizer_steps(n_batches, 2)  # one scheduler step per optimiser step
    assert json.loads((tmp_path / "runs" / "fusion_add" / "seed0" / "meta.json").read_text())["seed"] == 0


def test_full_config_step_benchmark_runs_and_skips(capsys):
    """benchmarks/full_config_step.py: a real child-process step (tiny x3d in bf16) and the skip path
    (an estimate above --max-gb reports the parameter memory instead of running)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "full_config_step.py"
    spec = importlib.util.spec_from_file_location("full_config_step", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--methods", "x3d", "--config-set", "tiny", "--steps", "1", "--threads", "1",
                     "--precisions", "bf16", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| x3d")]
    assert len(rows) == 1 and all(ln.rstrip().endswith("| ok       |") for ln in rows), out
    assert mod.main(["--methods", "refatomnet", "--max-gb", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "skipped: needs ~7 GB" in out and "4.69" in out  # full RefAtomNet: 1172M parameters = 4.69 GB in fp32
    assert mod.main(["--methods", "no_such_method"]) == 2
