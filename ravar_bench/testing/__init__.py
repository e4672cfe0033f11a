"""A random batch in the method contract's shapes, for tests and benchmarks that need no data."""
from __future__ import annotations

import torch

# cfg_options with the actor pass on, as benchmarks/default_levers.md (e9) measured it
ACTOR32 = {"head.actor_pass": True, "head.actor_size": 32}


def fake_batch(cfg, b: int, device="cpu") -> dict:
    """Every batch key of ravar_bench/method.py, sized by the config's data / text-encoder sections."""
    d, t = cfg.data, cfg.text_encoder
    size = d.img_size
    n, L, dt = d.get("num_dets", 16), t.max_len, t.dim
    g = torch.Generator().manual_seed(0)
    mk = lambda *s: torch.randn(*s, generator=g).to(device)
    boxes = torch.rand(b, n, 4, generator=g)
    boxes = torch.cat([boxes[..., :2] * 0.5, boxes[..., :2] * 0.5 + 0.1 + boxes[..., 2:] * 0.4], -1).to(device)
    labels = (torch.rand(b, 80, generator=g) < 0.05).float().to(device)
    return with_actor_text({
        "video": mk(b, d.num_frames, 3, size, size), "keyframe": mk(b, 3, d.get("keyframe_size", size), d.get("keyframe_size", size)),
        "text": ["the woman on the left in a red shirt"] * b, "text_emb": mk(b, dt), "text_tokens": mk(b, L, dt),
        "text_mask": torch.ones(b, L, dtype=torch.bool, device=device),
        "detections": {"boxes": boxes, "scores": torch.rand(b, n, generator=g).to(device),
                       "mask": torch.ones(b, n, dtype=torch.bool, device=device),
                       "cat_ids": torch.ones(b, n, dtype=torch.long, device=device), "cat_emb": mk(b, n, dt)},
        "labels": labels, "box": torch.tensor([[0.2, 0.2, 0.6, 0.8]] * b, device=device), "key": [f"fake___{900 + i}___1" for i in range(b)],
        "clip_key": [f"fake___{900 + i}" for i in range(b)],
    })


def with_actor_text(batch: dict, seed: int = 2) -> dict:
    """``batch`` plus ``actor_text``, which RavarModel's actor pass reads (the engine's text cache adds it): random
    frozen-encoder features of the fixed sentence, shaped as the batch's own text_emb / text_tokens / text_mask."""
    g = torch.Generator().manual_seed(seed)
    out = dict(batch)
    out["actor_text"] = {k: (batch[k].clone() if k == "text_mask" else
                             torch.randn(batch[k].shape, generator=g).to(batch[k].device, batch[k].dtype))
                         for k in ("text_emb", "text_tokens", "text_mask") if k in batch}
    return out


def another_sentence(batch: dict, seed: int = 1) -> dict:
    """``batch`` with another reference: a different string and other frozen-encoder features for it (the pixels,
    detections, labels and keys stay), for checking that a method reads the sentence."""
    g = torch.Generator().manual_seed(seed)
    out = dict(batch)
    out["text"] = ["a short man on the right in a green hat"] * len(batch["text"])
    for k in ("text_emb", "text_tokens"):
        out[k] = torch.randn(batch[k].shape, generator=g).to(batch[k].device)
    return out


def fake_detections(b: int, n: int = 8, dim: int = 384, seed: int = 0, device="cpu") -> dict:
    """A batch's ``detections`` (method.py's layout): n valid boxes per key frame, the first two people (COCO id 1),
    for tests whose model asks for detections (a method's own ``needs``, or the shared head's candidate boxes)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(b, n, 2, generator=g) * 0.5
    boxes = torch.cat([xy, xy + 0.1 + torch.rand(b, n, 2, generator=g) * 0.4], -1)
    cats = torch.randint(2, 10, (b, n), generator=g)
    cats[:, :2] = 1
    return {"boxes": boxes.to(device), "scores": torch.rand(b, n, generator=g).to(device),
            "mask": torch.ones(b, n, dtype=torch.bool, device=device), "cat_ids": cats.to(device),
            "cat_emb": torch.randn(b, n, dim, generator=g).to(device)}


def write_tiny_config(folder, body: str):
    """``folder/tiny.py``: the suite's tiny base config plus ``body`` (for a method registered with
    ``config_dir=folder`` in a test). Returns the folder."""
    from pathlib import Path

    from ..reference import CONFIG_ROOT

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.py").write_text(f"_base_ = ['{CONFIG_ROOT}/_base_/tiny.py']\n{body}")
    return folder
