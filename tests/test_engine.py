"""Training engine: resume after a kill gives the same model as an uninterrupted run; finished work is kept."""
import json

import pytest
import torch

from ravar_bench.config import load_config
from ravar_bench.engine import result_schema as S
from ravar_bench.engine.data_source import open_source
from ravar_bench.engine.results import collect_results, result_path
from ravar_bench.engine.text_cache import TextFeatureCache
from ravar_bench.engine.trainer import Interrupted, train_and_evaluate
from ravar_bench.method import Method
from ravar_bench.registry import register_method
from ravar_bench.testing import write_tiny_config


@pytest.fixture(scope="module")
def engine_env(tmp_path_factory, tiny_synth_root):
    cdir = write_tiny_config(tmp_path_factory.mktemp("cfg"),
                             "model = dict(type='test_engine_probe')\ntrain = dict(epochs=3, batch_size=8)\n"
                             "data = dict(num_frames=4, frame_stride=2, img_size=16)\nhead = dict(dropout=0.3)\n")

    @register_method("test_engine_probe", family="Control", config_dir=str(cdir))
    class Probe(Method):
        """Uses video, text and detections, with dropout in the head, so RNG state matters for resume."""
        needs = frozenset({"video", "text_emb", "detections"})

        def __init__(self, text_dim):
            super().__init__()
            self.v = torch.nn.Linear(3, 8)
            self.t = torch.nn.Linear(text_dim, 8)
            self.d = torch.nn.Linear(text_dim + 4, 8)
            self.feat_dim = 8

        def forward(self, b):
            v = self.v(b["video"].mean(dim=(1, 3, 4)))
            d = self.d(torch.cat([b["detections"]["cat_emb"], b["detections"]["boxes"]], -1)).mean(1)
            return v * self.t(b["text_emb"]) + d

    from ravar_bench.data.synthetic import SynthConfig
    from tests.conftest import TINY_SYNTH

    src = open_source("synthetic", synth=SynthConfig(**TINY_SYNTH), cache_dir=str(tiny_synth_root.parent),
                      progress=False)
    cfg = load_config("test_engine_probe", "tiny")
    return src, cfg, TextFeatureCache(dict(cfg.text_encoder))


@pytest.fixture
def count_steps():
    """Counts optimiser steps (every torch optimizer, through torch's global post-step hook)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    steps = []
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    yield steps
    handle.remove()


def _steps_per_epoch(src, cfg):
    return -(-len(src.splits["train"]) // int(cfg.train.batch_size))  # no drop_last


def test_resume_after_interruption_equals_uninterrupted(engine_env, tmp_path, count_steps):
    src, cfg, tc = engine_env
    per_epoch = _steps_per_epoch(src, cfg)
    ref = train_and_evaluate(cfg, src, tc, seed=1, out_dir=tmp_path / "ref", progress=False)
    assert len(count_steps) == 3 * per_epoch
    count_steps.clear()
    with pytest.raises(Interrupted):
        train_and_evaluate(cfg, src, tc, seed=1, out_dir=tmp_path / "int", progress=False, stop_after_epoch=1)
    assert len(count_steps) == per_epoch
    assert (tmp_path / "int/runs/test_engine_probe/seed1/last.pt").is_file()
    assert not result_path(tmp_path / "int", "test_engine_probe", "val", 1).exists()
    count_steps.clear()
    resumed = train_and_evaluate(cfg, src, tc, seed=1, out_dir=tmp_path / "int", progress=False)
    # the resumed call trains the two remaining epochs only (a resume that retrained from epoch 0 does 3)
    assert len(count_steps) == 2 * per_epoch
    a = torch.load(tmp_path / "ref/runs/test_engine_probe/seed1/model.pt", weights_only=True)
    b = torch.load(tmp_path / "int/runs/test_engine_probe/seed1/model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for r1, r2 in zip(ref, resumed):
        assert r1["mAP"] == r2["mAP"] and r1["mIoU"] == r2["mIoU"]
    # every val instance scored exactly once (no drop_last)
    assert ref[0]["n_instances"] == len(src.splits["val"])


def test_finished_work_is_not_rerun(engine_env, tmp_path):
    src, cfg, tc = engine_env
    train_and_evaluate(cfg, src, tc, seed=0, out_dir=tmp_path, progress=False)
    p = result_path(tmp_path, "test_engine_probe", "test", 0)
    before = p.stat().st_mtime_ns
    rows = train_and_evaluate(cfg, src, tc, seed=0, out_dir=tmp_path, progress=False)
    assert p.stat().st_mtime_ns == before and rows[1]["split"] == "test"
    train_and_evaluate(cfg, src, tc, seed=0, out_dir=tmp_path, progress=False, force=True)
    assert p.stat().st_mtime_ns != before
    df = collect_results(tmp_path)
    assert list(df.columns[:7]) == ["method", "family", "split", "seed", "mIoU", "mAP", "AUROC"]
    assert json.loads(p.read_text())["family"] == "Control"


def test_rows_of_a_real_run_match_the_declared_schema(engine_env, tmp_path):
    """Every column a real run writes is declared in result_schema, with its declared type, and results.csv is in
    the declared order; a row with an undeclared or a missing required column is refused when it is made."""
    src, cfg, tc = engine_env
    rows = train_and_evaluate(cfg, src, tc, seed=0, out_dir=tmp_path, progress=False)
    for split in ("val", "test"):
        on_disk = json.loads(result_path(tmp_path, "test_engine_probe", split, 0).read_text())
        assert S.check_row(on_disk) == [], S.check_row(on_disk)
    assert S.check_row({**rows[0], "mAP": "41.1"}) == ["column 'mAP' is str '41.1', declared float"]
    assert list(collect_results(tmp_path).columns) == S.order_columns({**rows[0], **rows[1]})
    with pytest.raises(S.SchemaError, match="undeclared columns \\['mAP_typo'\\]"):
        S.make_row(**rows[0], mAP_typo=1.0)
    with pytest.raises(S.SchemaError, match="missing required columns \\['data_digest'\\]"):
        S.make_row(**{k: v for k, v in rows[0].items() if k != "data_digest"})


def test_method_aux_loss_is_optimised(engine_env, tmp_path):
    """A method's own objective (``self.aux_loss``) is added to the shared loss by the engine."""
    src, _, tc = engine_env
    cdir = write_tiny_config(tmp_path / "cfg", "model = dict(type='test_aux_probe')\n"
                                               "train = dict(epochs=1, batch_size=8, weight_decay=0.0)\n")

    @register_method("test_aux_probe", family="Control", config_dir=str(cdir))
    class AuxProbe(Method):
        needs = frozenset({"text_emb"})

        def __init__(self, text_dim):
            super().__init__()
            self.lin = torch.nn.Linear(text_dim, 8)
            self.only_aux = torch.nn.Parameter(torch.ones(1))  # reached by nothing but the aux loss
            self.feat_dim = 8

        def forward(self, b):
            self.aux_loss = (self.only_aux ** 2).sum() if self.training else None
            return self.lin(b["text_emb"])

    cfg = load_config("test_aux_probe", "tiny", {"eval.swap_control": False, "eval.n_boot": 0})
    train_and_evaluate(cfg, src, tc, seed=0, out_dir=tmp_path / "out", progress=False)
    sd = torch.load(tmp_path / "out/runs/test_aux_probe/seed0/model.pt", weights_only=True)
    assert sd["method.only_aux"].item() < 1.0


def test_force_retrains_from_scratch(engine_env, tmp_path, count_steps):
    src, cfg, tc = engine_env
    train_and_evaluate(cfg, src, tc, seed=0, out_dir=tmp_path, progress=False)
    work = tmp_path / "runs/test_engine_probe/seed0"
    trained = torch.load(work / "model.pt", weights_only=True)
    # both files a stale run leaves: a zeroed final model, and a last-epoch checkpoint (zeroed weights, one epoch
    # to go) that a --force which kept last.pt would resume from
    torch.save({k: torch.zeros_like(v) for k, v in trained.items()}, work / "model.pt")
    st = torch.load(work / "last.pt", weights_only=True)
    st["model"] = {k: torch.zeros_like(v) for k, v in st["model"].items()}
    st["epoch"] = 2
    torch.save(st, work / "last.pt")
    count_steps.clear()
    rows = train_and_evaluate(cfg, src, tc, seed=0, out_dir=tmp_path, progress=False, force=True)
    assert len(count_steps) == 3 * _steps_per_epoch(src, cfg)  # all three epochs, from scratch
    retrained = torch.load(work / "model.pt", weights_only=True)
    assert all(torch.equal(trained[k], retrained[k]) for k in trained)  # deterministic: the same model again
    assert rows[0]["train_time_s"] > 0


def test_weight_average_equals_torchs_averaged_model_with_the_same_decay_schedule():
    """train.ema's average, checked against torch.optim.swa_utils.AveragedModel (an independent implementation)
    given the same warm-up decay; frozen parameters are left out, BatchNorm statistics are averaged."""
    from torch.optim.swa_utils import AveragedModel

    from ravar_bench.engine.weight_average import WeightAverage

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    net[3].bias.requires_grad_(False)
    decay = 0.9

    def avg_fn(avg, cur, n):
        if not avg.is_floating_point():
            return cur
        d = min(decay, (1 + int(n)) / (10 + int(n)))
        return d * avg + (1 - d) * cur

    ref = AveragedModel(net, avg_fn=avg_fn, use_buffers=True)
    ref.update_parameters(net)  # its first call copies: the average starts at the initial weights, as ours
    ours = WeightAverage(net, decay)
    assert "3.bias" not in ours.names and "1.running_mean" in ours.names
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    for _ in range(30):
        opt.zero_grad()
        net(torch.randn(16, 4)).pow(2).mean().backward()
        opt.step()
        ours.update(net)
        ref.update_parameters(net)
    last = {k: v.clone() for k, v in net.state_dict().items()}
    ours.copy_to(net)
    want = ref.module.state_dict()
    for name in ours.names:
        torch.testing.assert_close(net.state_dict()[name], want[name], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(net.state_dict()["0.weight"], last["0.weight"])  # the average is not the last step
    with pytest.raises(Exception, match="train.ema"):
        load_config("x3d", "tiny", {"train.ema": 1.0})


def test_an_interrupted_run_with_weight_averaging_resumes_to_the_same_average(engine_env, tmp_path):
    """train.ema: the saved (and evaluated) model is the average, which the checkpoint carries across a resume."""
    src, cfg, tc = engine_env
    cfg = load_config("test_engine_probe", "tiny", {"train.ema": 0.8})
    train_and_evaluate(cfg, src, tc, seed=1, out_dir=tmp_path / "ref", progress=False)
    with pytest.raises(Interrupted):
        train_and_evaluate(cfg, src, tc, seed=1, out_dir=tmp_path / "int", progress=False, stop_after_epoch=2)
    train_and_evaluate(cfg, src, tc, seed=1, out_dir=tmp_path / "int", progress=False)
    a = torch.load(tmp_path / "ref/runs/test_engine_probe/seed1/model.pt", weights_only=True)
    b = torch.load(tmp_path / "int/runs/test_engine_probe/seed1/model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    live = torch.load(tmp_path / "ref/runs/test_engine_probe/seed1/last.pt", weights_only=True)["model"]
    assert any(not torch.equal(a[k], live[k]) for k in a)  # the saved model is the average, not the last weights
