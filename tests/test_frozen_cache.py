"""Frozen parts computed once per clip: same outputs as without the cache, fewer computations, persisted."""
import torch

import ravar_bench
from ravar_bench.encoders.frozen_cache import FrozenFeatureCache, frozen_caches


def _batch(b=4):
    g = torch.Generator().manual_seed(0)
    return {"video": torch.randn(b, 8, 3, 64, 64, generator=g), "text_tokens": torch.randn(b, 32, 384, generator=g),
            "text_mask": torch.ones(b, 32, dtype=torch.bool),
            "detections": {"boxes": torch.rand(b, 16, 4, generator=g).sort(-1).values, "scores": torch.rand(b, 16),
                           "mask": torch.ones(b, 16, dtype=torch.bool), "cat_ids": torch.ones(b, 16, dtype=torch.long),
                           "cat_emb": torch.randn(b, 16, 384, generator=g)},
            "clip_key": [f"v___{900 + i}" for i in range(b)], "key": [f"v___{900 + i}___1" for i in range(b)]}


def test_cached_frozen_vit_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = ravar_bench.build_method("refatomnet").eval()
    caches = frozen_caches(model)
    assert len(caches) == 1
    cache = caches[0][1]
    b = _batch()
    calls = []
    vit = model.method.visual.vision_model
    hook = vit.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        first = model(b)["logits"]
        second = model(b)["logits"]
        nb = dict(b)
        nb.pop("clip_key")
        uncached = model(nb)["logits"]
    hook.remove()
    assert torch.equal(first, second) and torch.allclose(first, uncached, atol=1e-6)
    assert len(calls) == 2 and cache.hits == 4 and cache.misses == 4  # 1 cached pass + 1 uncached pass
    cache.bind(tmp_path / "c.pt")
    cache._dirty = True
    cache.save()
    fresh = FrozenFeatureCache()
    fresh.bind(tmp_path / "c.pt")
    assert set(fresh.store) == set(b["clip_key"])
    # a trainable tower is never cached
    assert not FrozenFeatureCache(enabled=False)(["a"], torch.ones(1, 2), lambda x: x * 2).eq(1).all()
