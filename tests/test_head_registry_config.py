"""Shared head and loss, the registry, the configs."""
import numpy as np
import pytest
import torch

import ravar_bench
from ravar_bench.config import load_config
from ravar_bench.errors import UsageError
from ravar_bench.method import Method
from ravar_bench.model.head import SharedHead, ravar_loss
from ravar_bench.registry import list_methods, method_info, register_method, resolve_methods
from ravar_bench.testing import fake_batch, write_tiny_config


def test_head_shapes_and_box_range():
    head = SharedHead(32, cls_hidden=(16,), box_hidden=(8,), dropout=0.0)
    out = head(torch.randn(5, 32) * 10)
    logits, boxes = out["logits"], out["boxes"]
    assert logits.shape == (5, 80) and boxes.shape == (5, 4)
    assert (boxes >= 0).all() and (boxes <= 1).all()
    released = SharedHead(768)  # the released code's shapes: cls 768-512-(drop)-256-80, box 768-512-128-4
    lin = [m.out_features for m in released.cls if isinstance(m, torch.nn.Linear)]
    assert lin == [512, 256, 80] and sum(isinstance(m, torch.nn.Dropout) for m in released.cls) == 1
    assert [m.out_features for m in released.box if isinstance(m, torch.nn.Linear)] == [512, 128, 4]
    with pytest.raises(ValueError, match="box_activation"):
        SharedHead(8, box_activation="tanh")


def test_loss_matches_equations_13_14():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 80))
    y = (rng.random((4, 80)) < 0.2).astype(float)
    b, bh = rng.random((4, 4)), rng.random((4, 4))
    p = 1 / (1 + np.exp(-z))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()  # Eq. 13, averaged over classes and batch
    mse = ((b - bh) ** 2).sum(1).mean()  # Eq. 14 summed over the 4 coordinates
    out = ravar_loss(torch.tensor(z), torch.tensor(bh), torch.tensor(y), torch.tensor(b), box_weight=5.0)
    assert out["loss"].item() == pytest.approx(bce + 5 * mse, rel=1e-9)
    out = ravar_loss(torch.tensor(z), torch.tensor(bh), torch.tensor(y), torch.tensor(b), box_weight=1.0, cls_weight=5.0)
    assert out["loss"].item() == pytest.approx(5 * bce + mse, rel=1e-9)


def test_registry_contents_and_errors():
    names = list_methods()
    assert {"x3d", "clip4clip"} <= set(names)
    assert method_info("x3d").family == "AAL" and method_info("x3d").paper_name == "X3D"
    assert set(resolve_methods("all")) <= set(list_methods(table2_only=True))
    assert resolve_methods("x3d,clip4clip,x3d") == ["x3d", "clip4clip"]
    assert "x3d" in resolve_methods("AAL")
    with pytest.raises(UsageError, match="unknown method 'nope'"):
        resolve_methods("nope")
    with pytest.raises(UsageError, match=r"unknown method 'x3e'; closest registered: x3d"):
        resolve_methods("x3d,x3e")
    with pytest.raises(UsageError, match="unknown family"):
        register_method("bad", family="Nope")


def test_one_decorator_adds_a_method(tmp_path):
    write_tiny_config(tmp_path, "model = dict(type='test_decorated', width=7)\n")

    @register_method("test_decorated", family="Control", config_dir=str(tmp_path))
    class Decorated(Method):
        needs = frozenset({"text_emb"})

        def __init__(self, text_dim, width):
            super().__init__()
            self.lin = torch.nn.Linear(text_dim, width)
            self.feat_dim = width

        def forward(self, batch):
            return self.lin(batch["text_emb"])

    assert "test_decorated" in list_methods(family="Control")
    assert "test_decorated" not in resolve_methods("all")  # not a Table-2 family
    model = ravar_bench.build_method("test_decorated")
    assert model.method.lin.in_features == 384  # text_dim injected from text_encoder.dim
    out = model(fake_batch(load_config("test_decorated"), 3))
    assert out["logits"].shape == (3, 80) and out["boxes"].shape == (3, 4)


def test_config_inheritance_and_overrides():
    cfg = load_config("x3d", "tiny")
    assert cfg.train.warmup_ratio == 0.1 and cfg.loss.box_weight == 5.0  # from _base_/runtime.py
    assert cfg.data.img_size == 64 and cfg.text_encoder.type == "minilm"
    cfg = load_config("x3d", "tiny", {"train.epochs": 1, "data.img_size": 96})
    assert cfg.train.epochs == 1 and cfg.data.img_size == 96
    full = load_config("x3d", "full")
    assert full.data.img_size == 224 and full.text_encoder.type == "bert" and full.train.lr == 1e-4
    with pytest.raises(UsageError, match="config_set"):
        load_config("x3d", "huge")


@pytest.mark.parametrize("name", ["x3d", "clip4clip"])
def test_every_method_builds_tiny_and_full_on_meta(name):
    tiny = ravar_bench.build_method(name, "tiny")
    full = ravar_bench.build_method(name, "full", device="meta")
    n_tiny = sum(p.numel() for p in tiny.parameters())
    n_full = sum(p.numel() for p in full.parameters())
    assert n_full > 5 * n_tiny
    assert all(p.is_meta for p in full.parameters())


def test_wrong_video_shape_is_a_clear_error():
    m = ravar_bench.build_method("x3d")
    with pytest.raises(ValueError, match="num_frames"):
        m({"video": torch.randn(2, 4, 3, 64, 64), "text_emb": torch.randn(2, 384)})
