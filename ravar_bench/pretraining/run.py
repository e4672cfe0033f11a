"""``ravar-bench pretrain``: the same recipe for every tiny method's instance at each input size it is built for.

Recipe (one for all, fixed before the runs): the method's tiny instance (every part trains, the visual towers the
benchmark freezes included: :func:`unfrozen_keys`; the frozen text encoder's features are inputs) reads
person-centred clips of the pretraining corpus (cropped around the true box from the frames as stored, resampled to
the instance's input size: exactly what the actor pass feeds it) with the actor pass's fixed sentence, and
:class:`PretextHead` predicts the person's actions and appearance (:mod:`.pretext`). A family with an image-text
pretext of its own (:meth:`Method.contrastive_pair`: the CLIP, BLIP-2 and Singularity towers; e19) can also match
each crop to its caption (``corpus.CAPTION_TEMPLATES``) by symmetric InfoNCE, at the weight
:data:`.pretext.CONTRASTIVE` gives (0 for the shipped files until e19 is judged: benchmarks/default_levers.md).
AdamW (lr 2e-3, weight decay 0.01), batch 16, linear warm-up over 10% of the steps then linear decay to zero,
gradient clipping at 1.0, :data:`EPOCHS` passes over the corpus, seed 0. The held-out score is computed on the
corpus's own val movies. Deterministic for a given machine and thread count; resumable after every epoch
(``OUT/.partial/``); a file whose manifest entry matches the current code's recipe is kept.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..config import load_config
from ..data.dataset import normalise_batch, stored_resolution
from ..encoders.shipped_weights import WEIGHTS_DIR, architecture, file_name, read_manifest, remake_command, save_shipped
from ..errors import UsageError
from ..factory import actor_config, model_kwargs
from ..files.atomic import atomic_write
from ..model.actor_crop import ACTOR_SENTENCE, actor_batch
from ..registry import METHODS
from ..method import Method
from .corpus import CORPUS, attribute_table, attrs_of, caption_table, corpus_record
from .pretext import CONTRASTIVE, PretextHead, caption_retrieval, contrastive_loss, pretext_loss, pretext_score

log = logging.getLogger(__name__)

EPOCHS = 10
RECIPE = dict(epochs=EPOCHS, batch_size=16, lr=2e-3, weight_decay=0.01, warmup_ratio=0.1, grad_clip=1.0, seed=0)
TEXT_KEYS = ("text_emb", "text_tokens", "text_mask")


ACTOR_SIZE = 32  # the actor pass's crop side in the measured recipes (e9-e12: head.actor_size=32)


def sizes_of(cfg) -> list[int]:
    """The input sizes a tiny config's instances are built for: the clip's, and the actor pass's crop
    (``head.actor_size``, else :data:`ACTOR_SIZE`), so the files exist whether the pass is on or off."""
    sizes = [int(cfg.data.img_size)]
    actor = int(cfg.get("head", {}).get("actor_size") or ACTOR_SIZE)
    return sizes + ([actor] if actor not in sizes else [])


def reads_pixels(cfg) -> bool:
    cls = METHODS.get(cfg.model["type"])
    return bool(set(cls.needs) & {"video", "keyframe"})


def unfrozen_keys(name: str) -> list[str]:
    """The method's ``tower_freeze_keys`` that its tiny config sets true: the pretraining sets them false, so that
    the tower trains here and the benchmark freezes it pretrained, as the paper freezes BLIP-2's EVA ViT (e17 in
    benchmarks/default_levers.md; a frozen random tower is no analogue of a frozen pretrained one)."""
    model = load_config(name, "tiny", {"init.weights": "scratch"}).model
    keys = []
    for key in METHODS.get(name).tower_freeze_keys:
        node = model
        for part in key.split("."):
            node = node.get(part) if hasattr(node, "get") else None
        if node is True:
            keys.append(key)
    return keys


def instance_config(name: str, size: int, cfg_options: dict | None = None, train_towers: bool = False):
    """The tiny config of ``name``'s instance at ``size`` px (random start); ``train_towers``: with the visual
    towers the benchmark freezes unfrozen (:func:`unfrozen_keys`), as the pretraining builds it. The state dict's
    keys and shapes are the same either way (freezing only stops gradients)."""
    unfreeze = {f"model.{k}": False for k in unfrozen_keys(name)} if train_towers else {}
    cfg = load_config(name, "tiny", {**(cfg_options or {}), **unfreeze, "init.weights": "scratch"})
    return cfg, actor_config(cfg, size if size != cfg.data.img_size else None)


def uses_pair(name: str) -> bool:
    """Whether ``name``'s family has an image-text pretext of its own (:meth:`Method.contrastive_pair`) and the
    recipe gives it weight (e19)."""
    return CONTRASTIVE["weight"] > 0 and METHODS.get(name).contrastive_pair is not Method.contrastive_pair


def _batches(model_needs, loader, text_cache, cfg, size, table, captions=None):
    """(person crop, actions, attributes, captions or None) per batch of the corpus."""
    for batch in loader:
        if not batch["key"]:
            continue
        batch["text"] = [ACTOR_SENTENCE] * len(batch["key"])
        text_cache.add_to_batch(batch, model_needs)
        batch["actor_text"] = {k: batch[k] for k in TEXT_KEYS if k in batch}
        batch = normalise_batch(batch, cfg.data.mean, cfg.data.std)
        crop = actor_batch(batch, batch["box"], size=size)
        caps = [captions[k] for k in batch["key"]] if captions is not None else None
        yield crop, batch["labels"], attrs_of(batch, table), caps


def _caption_batch(crop: dict, caps: list[str], text_cache, needs) -> dict:
    """The person crop reading its caption instead of the actor pass's sentence (frozen text features included)."""
    feats = text_cache.add_to_batch({"text": caps}, set(needs) & {"text_emb", "text_tokens"})
    return {**crop, "text": caps, **{k: feats[k] for k in TEXT_KEYS if k in feats}}


def _forward(method, head, crop):
    method.spatial_map = None
    method.aux_loss = None
    return head(method(crop))


@torch.no_grad()
def _score(method, head, loader, needs, text_cache, cfg, size, table, captions=None) -> dict:
    """The held-out pretext score; with ``captions``, also caption retrieval by the method's contrastive pair."""
    method.eval()
    head.eval()
    logits, acts, attrs, vis, txt, all_caps = [], [], [], [], [], []
    for crop, y, a, caps in _batches(needs, loader, text_cache, cfg, size, table, captions):
        logits.append(_forward(method, head, crop).float().numpy())
        acts.append(y.numpy())
        attrs.append(a.numpy())
        if caps is not None:
            v, t = method.contrastive_pair(_caption_batch(crop, caps, text_cache, needs))
            vis.append(v.float())
            txt.append(t.float())
            all_caps += caps
    score = pretext_score(np.concatenate(logits), np.concatenate(acts), np.concatenate(attrs))
    if all_caps:
        score.update(caption_retrieval(torch.cat(vis), torch.cat(txt), all_caps))
    return score


def recipe_entry(name: str, size: int) -> dict:
    return {"recipe": RECIPE, "corpus": corpus_record(), "command": remake_command(name), "size": size,
            "unfrozen": unfrozen_keys(name), **({"contrastive": CONTRASTIVE} if uses_pair(name) else {})}


def up_to_date(name: str, size: int, method, folder: Path) -> bool:
    """Whether the file at ``folder`` was made by today's recipe, corpus and tower freezing for this architecture
    (a file made before e17 has no ``unfrozen`` entry: it was made with nothing unfrozen)."""
    entry = read_manifest(folder)["files"].get(file_name(name, size))
    return bool(entry) and (folder / file_name(name, size)).is_file() and entry.get("recipe") == RECIPE and \
        entry.get("corpus") == corpus_record() and entry.get("architecture") == architecture(method) and \
        entry.get("unfrozen", []) == unfrozen_keys(name) and entry.get("contrastive") == \
        (CONTRASTIVE if uses_pair(name) else None)


def pretrain_one(name: str, size: int, source, text_cache, out: Path, progress: bool = True,
                 force: bool = False, epochs: int | None = None, code: dict | None = None) -> dict | None:
    """Pretrain ``name``'s instance for ``size`` px; returns its manifest entry (None: kept, already up to date)."""
    from tqdm import tqdm

    from ..engine.trainer import make_loader, seed_everything

    base_cfg, cfg = instance_config(name, size, train_towers=True)
    seed_everything(RECIPE["seed"])
    method = METHODS.get(name)(**model_kwargs(cfg))
    if not force and epochs is None and up_to_date(name, size, method, out):
        return None
    epochs = int(epochs or RECIPE["epochs"])
    head = PretextHead(method.feat_dim)
    needs = set(method.needs) | stored_resolution(method.needs)
    table = attribute_table(source.root)
    captions = caption_table(source.root) if uses_pair(name) else None
    data_cfg = base_cfg.copy()  # the clip as the benchmark's data config decodes it; the crop is made from *_full
    data_cfg.train.batch_size = RECIPE["batch_size"]
    gen = torch.Generator().manual_seed(RECIPE["seed"])
    _, train_loader = make_loader(source, "train", data_cfg, needs, shuffle=True, generator=gen)
    _, val_loader = make_loader(source, "val", data_cfg, needs, shuffle=False)
    params = [p for p in list(method.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])
    total = epochs * len(train_loader)
    from transformers import get_linear_schedule_with_warmup

    sched = get_linear_schedule_with_warmup(opt, int(RECIPE["warmup_ratio"] * total), total)
    partial = out / ".partial" / f"{file_name(name, size)}.pt"
    start, spent = 0, 0.0
    if partial.is_file() and not force:
        st = torch.load(partial, weights_only=True)
        if st.get("epochs") == epochs and st.get("architecture") == architecture(method):
            method.load_state_dict(st["method"])
            head.load_state_dict(st["head"])
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            gen.set_state(st["gen"])
            torch.set_rng_state(st["torch_rng"])
            start, spent = int(st["epoch"]), float(st["seconds"])
            log.info("%s@%d: resuming pretraining after epoch %d", name, size, start)
    bar = tqdm(total=total, initial=start * len(train_loader), desc=f"pretrain {name}@{size}", unit="step",
               disable=not progress, leave=False)
    for epoch in range(start, epochs):
        method.train()
        head.train()
        t0 = time.time()
        for crop, y, a, caps in _batches(needs, train_loader, text_cache, base_cfg, size, table, captions):
            loss = pretext_loss(_forward(method, head, crop), y, a)
            if caps is not None:
                pair = method.contrastive_pair(_caption_batch(crop, caps, text_cache, needs))
                loss = loss + CONTRASTIVE["weight"] * contrastive_loss(*pair, caps)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"pretrain {name}@{size}: non-finite loss at epoch {epoch + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, RECIPE["grad_clip"])
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        spent += time.time() - t0
        state = {"method": method.state_dict(), "head": head.state_dict(), "opt": opt.state_dict(),
                 "sched": sched.state_dict(), "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
                 "epoch": epoch + 1, "epochs": epochs, "seconds": spent, "architecture": architecture(method)}
        atomic_write(partial, lambda tmp: torch.save(state, tmp))
    bar.close()
    score = _score(method, head, val_loader, needs, text_cache, base_cfg, size, table, captions)
    entry = {**recipe_entry(name, size), "recipe": {**RECIPE, "epochs": epochs}, "steps": total,
             "train_seconds": round(spent, 1), "threads": torch.get_num_threads(), "pretext_val": score,
             **(code or {})}
    save_shipped(method, name, size, entry, out)
    partial.unlink(missing_ok=True)
    return entry


def describe(name: str, size: int, entry: dict) -> str:
    s = entry["pretext_val"]
    attrs = ", ".join(f"{g} {s[f'{g}_acc']:.1f}% ({s[f'{g}_acc_chance']:.1f})" for g in ("shirt", "trousers",
                                                                                          "headwear", "noun"))
    if "caption_R1" in s:
        attrs += f"; caption R@1 {s['caption_R1']:.1f}% ({s['caption_R1_chance']:.1f})"
    return (f"{name}@{size}: pretext (held-out) action mAP {s['action_mAP']:.1f} (constant predictor "
            f"{s['action_mAP_chance']:.1f}); accuracy (majority class) {attrs}; {entry['steps']} steps, "
            f"{entry['train_seconds']:.0f} s; sha256 {entry.get('sha256', '?')[:12]}")


def pretrain(methods: list[str], out: str | Path | None = None, progress: bool = True, force: bool = False,
             epochs: int | None = None, cache_dir: str | None = None, echo=print,
             sizes: list[int] | None = None) -> dict:
    """Pretrain every (method, size) of ``methods``' tiny configs (``sizes``: only those input sizes); one line
    per file (made or kept)."""
    from ..engine.data_source import open_source
    from ..engine.provenance import code_version
    from ..engine.text_cache import TextFeatureCache

    out = Path(out) if out is not None else WEIGHTS_DIR
    jobs = []
    for name in methods:
        cfg = load_config(name, "tiny", {"init.weights": "scratch"})
        if not reads_pixels(cfg):
            echo(f"{name}: reads no pixels, nothing to pretrain (starts from its own initialisation)")
            continue
        jobs += [(name, size) for size in sizes_of(load_config(name, "tiny")) if not sizes or size in sizes]
    if not jobs:
        raise UsageError("pretrain: none of the methods reads pixels" if not sizes else
                         f"pretrain: none of the methods is built for --sizes {','.join(map(str, sizes))}")
    source = open_source("synthetic", synth=CORPUS, progress=progress, cache_dir=cache_dir)
    text_cache = TextFeatureCache(dict(load_config(jobs[0][0], "tiny").text_encoder))
    code = {k: v for k, v in code_version().items() if k in ("git_commit", "git_dirty")}
    made = {}
    for name, size in jobs:
        kept = pretrain_one(name, size, source, text_cache, out, progress, force, epochs, code) is None
        entry = read_manifest(out)["files"][file_name(name, size)]  # with the sha256 save_shipped added
        echo(describe(name, size, entry) + (" (kept: up to date)" if kept else ""))
        made[file_name(name, size)] = entry
    return made


__all__ = ["pretrain", "pretrain_one", "RECIPE", "EPOCHS", "sizes_of", "unfrozen_keys", "uses_pair"]
