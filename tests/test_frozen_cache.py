"""Frozen parts computed once per clip: same outputs as without the cache, fewer computations, persisted."""
import torch

import ravar_bench
from ravar_bench.encoders.frozen_cache import FrozenFeatureCache, frozen_caches
from ravar_bench.testing import ACTOR32, with_actor_text


def _batch(b=4):
    g = torch.Generator().manual_seed(0)
    batch = {"video": torch.randn(b, 8, 3, 64, 64, generator=g), "text_tokens": torch.randn(b, 32, 384, generator=g),
             "text_mask": torch.ones(b, 32, dtype=torch.bool),
             "detections": {"boxes": torch.rand(b, 16, 4, generator=g).sort(-1).values, "scores": torch.rand(b, 16),
                            "mask": torch.ones(b, 16, dtype=torch.bool), "cat_ids": torch.ones(b, 16, dtype=torch.long),
                            "cat_emb": torch.randn(b, 16, 384, generator=g)},
             "clip_key": [f"v___{900 + i}" for i in range(b)], "key": [f"v___{900 + i}___1" for i in range(b)]}
    return with_actor_text(batch)


def _count_calls(module):
    calls = []
    return calls, module.register_forward_hook(lambda *a: calls.append(1))


def test_cached_frozen_vit_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = ravar_bench.build_method("refatomnet", cfg_options=ACTOR32).eval()
    caches = frozen_caches(model)
    # the actor pass's instance has its own; the candidates' appearance (head.cand_appearance) caches its features
    # per (clip, box), so the ViT cache of its frozen copy is off and not bound
    assert [n for n, _ in caches] == ["method.visual", "actor.visual", "appearance"]
    assert not model.appearance.encoder.visual.feature_cache.enabled
    cache = caches[0][1]
    assert cache is model.method.visual.feature_cache and cache.enabled
    cache.bind(tmp_path / "c.pt")  # as the engine does, before the first batch
    b = _batch()
    vit = model.method.visual.vision_model
    calls, hook = _count_calls(vit)
    with torch.no_grad():
        first = model(b)["logits"]
        second = model(b)["logits"]
        nb = dict(b)
        nb.pop("clip_key")
        uncached = model(nb)["logits"]
    hook.remove()
    assert torch.equal(first, second) and torch.allclose(first, uncached, atol=1e-6)
    assert len(calls) == 2 and cache.hits == 4 and cache.misses == 4  # 1 cached pass + 1 uncached pass
    # what the forward passes stored is written by save() (no flag set by hand) and read back by a later run
    cache.save()
    assert (tmp_path / "c.pt").is_file()
    fresh = FrozenFeatureCache()
    fresh.bind(tmp_path / "c.pt")
    assert set(fresh.store) == set(b["clip_key"])
    assert all(torch.equal(fresh.store[k], cache.store[k]) for k in b["clip_key"])
    model.method.visual.feature_cache = fresh
    calls, hook = _count_calls(vit)
    with torch.no_grad():
        third = model(b)["logits"]
    hook.remove()
    assert len(calls) == 0 and fresh.hits == 4 and torch.equal(third, first)  # the ViT never ran


def test_trainable_vit_is_never_cached(tmp_path):
    """freeze_vision=False: the cache is off, the ViT runs on every pass and is trained."""
    torch.manual_seed(0)
    model = ravar_bench.build_method("refatomnet", cfg_options={"model.blip2.freeze_vision": False}).train()
    vit = model.method.visual.vision_model
    assert all(p.requires_grad for p in vit.parameters())
    cache = model.method.visual.feature_cache
    cache.bind(tmp_path / "c.pt")
    b = _batch(2)
    calls, hook = _count_calls(vit)
    first = model(b)["logits"]
    first.sum().backward()
    with torch.no_grad():
        model(b)
    hook.remove()
    assert len(calls) == 2 and cache.store == {} and cache.hits == cache.misses == 0
    assert all(p.grad is not None for p in vit.parameters() if p.requires_grad)
    assert any(p.grad.abs().sum() > 0 for p in vit.parameters())
    cache.save()
    assert not (tmp_path / "c.pt").exists()
