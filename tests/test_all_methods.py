"""Every registered method, whoever adds it: builds tiny and full (meta device), trains one step with a finite
loss and a gradient in EVERY trainable part, keeps the output contract, and reads the sentence it declares."""
import pytest
import torch

import ravar_bench
from ravar_bench.config import load_config
from ravar_bench.factory import build_from_config
from ravar_bench.method import frozen_modules
from ravar_bench.registry import list_methods
from ravar_bench.testing import ACTOR32, another_sentence, fake_batch

SENTENCE_KEYS = {"text", "text_emb", "text_tokens"}


def _loss(model, batch):
    out = model(batch)
    assert out["logits"].shape == (len(batch["key"]), 80) and out["boxes"].shape == (len(batch["key"]), 4)
    loss = out["losses"]["loss"]  # the shared loss + the candidate choice's + the method's own objective
    assert torch.isfinite(loss)
    return loss


# the default, and with the actor-centred second pass (a second instance of the method on 32 px crops)
@pytest.mark.parametrize("options", [None, ACTOR32], ids=["default", "actor32"])
@pytest.mark.parametrize("name", list_methods())
def test_method_builds_and_trains_a_step(name, options):
    torch.manual_seed(0)
    cfg = load_config(name, "tiny", options)
    model = build_from_config(cfg).train()
    # a fully frozen tower (detector, SAM, ViT, LLM, an actor's objective-only part) stays in eval mode in training
    # (Method's train(): no method writes its own override)
    towers = frozen_modules(model.method) + (frozen_modules(model.actor) if model.actor is not None else [])
    assert not [n for n, m in towers for x in m.modules() if x.training], f"{name}: a frozen tower is in train mode"
    batch = fake_batch(cfg, 4)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    _loss(model, batch).backward()
    opt.step()
    # the second step: zero-initialised layers (FiLM's output, residual BN gammas) let gradients through only
    # after the first. Now every trainable parameter gets one: a detached branch, or a parameter nothing reads,
    # fails here (an unused one should be frozen, so that it is not counted as trained)
    opt.zero_grad(set_to_none=True)
    _loss(model, batch).backward()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not dead, f"{name}: no gradient reaches {dead}"
    opt.step()
    # after these optimiser steps (zero-initialised text gates, e.g. FiLM's, open up), another sentence changes
    # the output of a method that declares a sentence key in ``needs``, and leaves one that declares none unchanged
    model.eval()
    with torch.no_grad():
        a, b = model(batch), model(another_sentence(batch))
    same = torch.allclose(a["logits"], b["logits"], atol=1e-6) and torch.allclose(a["boxes"], b["boxes"], atol=1e-6)
    reads = sorted(set(model.method.needs) & SENTENCE_KEYS)
    if reads:
        assert not same, f"{name} declares {reads} in needs but its output ignores the sentence"
    else:
        assert same, f"{name} declares no sentence key in needs but its output depends on the sentence"
    full = ravar_bench.build_method(name, "full", device="meta")
    assert all(p.is_meta for p in full.parameters())
