"""Every registered method, whoever adds it: builds tiny and full (meta device), trains one step with a finite
loss and gradients reaching its own parameters, and keeps the output contract."""
import pytest
import torch

import ravar_bench
from ravar_bench.config import build_from_config, load_config
from ravar_bench.head import ravar_loss
from ravar_bench.registry import list_methods
from ravar_bench.testing import fake_batch


@pytest.mark.parametrize("name", list_methods())
def test_method_builds_and_trains_a_step(name):
    torch.manual_seed(0)
    cfg = load_config(name, "tiny")
    model = build_from_config(cfg).train()
    batch = fake_batch(cfg, 4)
    out = model(batch)
    assert out["logits"].shape == (4, 80) and out["boxes"].shape == (4, 4)
    loss = ravar_loss(out["logits"], out["boxes"], batch["labels"], batch["box"])["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.method.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{name}: no gradient reaches the method"
    full = ravar_bench.build_method(name, "full", device="meta")
    assert all(p.is_meta for p in full.parameters())
