"""Train one method for one seed, checkpoint every epoch, resume after a kill, evaluate each split.

Why a small loop of our own instead of mmengine's Runner: mmengine checkpoints pickle numpy objects
(its message hub), which torch.load(weights_only=True) refuses (stack-notes.md), and this suite loads
nothing with a full unpickle. Everything here is saved as tensors / plain containers and read back
with weights_only=True. mmengine still provides the configs and the registry.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.ava import NUM_CLASSES
from ..data.dataset import ClipDataset, loader_kwargs, normalise_batch
from ..encoders.frozen_cache import frozen_caches
from ..errors import UsageError
from ..factory import build_from_config, count_params
from ..files import faultpoint
from ..registry import method_info
from . import diagnostics as diag
from . import distributed as D
from . import evaluation as ev
from . import reuse
from .accumulation import grad_accum, is_step_boundary, optimizer_steps
from .precision import autocast_for, prepare_model
from .provenance import provenance
from .result_schema import make_row
from .results import atomic_write, result_path, write_json_atomic
from .skips import SkipCounter
from .weight_average import WeightAverage

log = logging.getLogger(__name__)


class Interrupted(RuntimeError):
    """Raised by ``stop_after_epoch`` (tests simulate a kill with it)."""


def label_prior(instances) -> torch.Tensor:
    """Each AVA class's share among the training instances (80,)."""
    counts = torch.zeros(NUM_CLASSES)
    for inst in instances:
        counts[[a - 1 for a in inst.actions]] += 1
    return counts / max(1, len(instances))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _save_to(obj, tmp) -> None:
    with open(tmp, "wb") as f:  # through a Python file: a full disk then raises OSError(ENOSPC), not a torch error
        torch.save(obj, f)


def _atomic_torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: _save_to(obj, tmp), tmp=path.with_suffix(path.suffix + ".tmp"))


def make_loader(source, split: str, cfg, needs, shuffle: bool, generator=None, skip_missing_frames=False,
                instances=None):
    dets = source.detections(split) if "detections" in needs else None
    instances = source.splits[split] if instances is None else instances
    ds = ClipDataset(instances, source.root, dict(cfg.data), needs, detections=dets,
                     skip_missing_frames=skip_missing_frames, cache=source.clip_cache,
                     skip_missing_detections=source.skip_invalid, frame_status=source.frame_status, split=split,
                     skip_invalid=source.skip_invalid)
    bs = cfg.train.batch_size if shuffle else cfg.eval.batch_size
    rank, world = D.rank_world()
    kw = dict(collate_fn=ds.collate, drop_last=False, **loader_kwargs(cfg.train))
    # drop_last=False everywhere: every instance is trained on and, above all, scored (the authors'
    # eval loaders drop the last incomplete batch).
    if world == 1:
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=shuffle, generator=generator, **kw)
    elif shuffle:  # training: the global batch is split over the ranks
        sampler = torch.utils.data.DistributedSampler(ds, world, rank, shuffle=True, seed=int(cfg.get("seed", 0)))
        loader = torch.utils.data.DataLoader(ds, batch_size=max(1, bs // world), sampler=sampler, **kw)
    else:  # evaluation: an unpadded shard per rank, gathered afterwards
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, D.shard(len(ds))), batch_size=bs, **kw)
    return ds, loader


def _to(batch: dict, device) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.to(device, non_blocking=True)
        elif isinstance(v, dict):
            out[k] = _to(v, device)
        else:
            out[k] = v
    return out


@torch.no_grad()
def predict(model, loader, text_cache, device="cpu", progress=False, desc="eval", order=None, counter=None,
            precision=None) -> dict:
    """Scores and boxes for every instance of ``loader``, under the run's ``precision`` policy (a frozen tower may
    be stored in bf16); under DDP gathered from all ranks in ``order``."""
    model.eval()
    keys, scores, boxes, labels, gt = [], [], [], [], []
    ds = loader.dataset.dataset if isinstance(loader.dataset, torch.utils.data.Subset) else loader.dataset
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        skipped = batch.pop("_skipped", [])
        if counter is not None:  # unreadable clips met now (skipped on request), counted for the result row
            counter(skipped)
        if not batch["key"]:  # every clip of the batch unreadable and skipped on request
            continue
        batch = text_cache.add_to_batch(batch, model.needs)
        with autocast_for(precision):
            out = model(normalise_batch(_to(batch, device), ds.mean, ds.std))
        keys += batch["key"]
        scores.append(out["logits"].float().cpu())
        boxes.append(out["boxes"].float().cpu())
        labels.append(batch["labels"])
        gt.append(batch["box"])
    cat = (lambda xs, w: torch.cat(xs).numpy() if xs else np.zeros((0, w), dtype=np.float32))
    pred = {"keys": keys, "scores": cat(scores, 80), "boxes": cat(boxes, 4),
            "labels": cat(labels, 80).astype(np.int8), "gt_boxes": cat(gt, 4)}
    return D.gather_predictions(pred, order) if order is not None else pred


def save_predictions(pred: dict, path: Path) -> None:
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, keys=np.array(pred["keys"]), scores=pred["scores"],
                                                       boxes=pred["boxes"], labels=pred["labels"],
                                                       gt_boxes=pred["gt_boxes"]),
                 tmp=path.with_name(path.stem + f".tmp{os.getpid()}.npz"))  # numpy appends .npz to other names


def load_predictions(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: (z[k].tolist() if k == "keys" else z[k]) for k in z.files}


def train_and_evaluate(cfg, source, text_cache, seed: int, out_dir: str | Path, splits=("val", "test"),
                       force: bool = False, progress: bool = True, stop_after_epoch: int | None = None,
                       device: str = "cpu", skip_missing_frames: bool = False) -> list[dict]:
    """Returns one result row per split; each is also written atomically to out_dir/results/."""
    name = cfg.method_name
    info = method_info(name)
    out_dir = Path(out_dir)
    main = D.is_main()
    if cfg.eval.get("average", "weighted") not in ("weighted", "macro"):
        raise UsageError(f"eval.average must be 'weighted' (the authors' protocol) or 'macro', got "
                         f"{cfg.eval.get('average')!r}")
    prov = provenance(cfg, source, device)
    D.barrier()  # every rank reads the old results before rank 0 may move them
    plan = reuse.plan_results(out_dir, name, seed, splits, prov, force, move=main)
    D.barrier()
    if plan.reuse_rows is not None:
        log.info("%s seed %d: results of this config and data exist, not re-run (use --force to redo)", name, seed)
        return plan.reuse_rows

    work = out_dir / "runs" / name / f"seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path, final_path = work / "last.pt", work / "model.pt"
    ckpt_prov = None
    if ckpt_path.is_file():
        # memory-mapped: only the provenance entry is read here (a full-config checkpoint is gigabytes)
        ckpt_prov = torch.load(ckpt_path, weights_only=True, map_location="cpu", mmap=True).get("provenance")
    model_ok, ckpt_ok = usable = reuse.run_folder_usable(work, prov, force, ckpt_prov)
    D.barrier()  # every rank has decided before rank 0 moves stale weights aside
    if main:
        reuse.move_stale_run_files(work, prov, force, ckpt_prov, usable, said=plan.superseded is not None)
    D.barrier()
    if main:
        atomic_write(work / "config.py", lambda tmp: Path(tmp).write_text(cfg.pretty_text))

    seed_everything(seed)
    cfg.seed = seed
    model = build_from_config(cfg).to(device)
    prec = prepare_model(model, cfg.train, device)  # precision, frozen towers' dtype, checkpointing
    needs = model.needs
    # unreadable frames, missing detections and emptied splits are found here, before any training
    skips = SkipCounter(source, ("train", *splits))
    skips.preflight({s: make_loader(source, s, cfg, needs, shuffle=False, skip_missing_frames=skip_missing_frames)[0]
                     for s in ("train", *splits)})
    world = D.rank_world()[1]
    caches = frozen_caches(model)
    if caches:
        # + the resolved precision: "auto" is fp32 on a CPU and bf16 on a GPU, and the frozen tower's outputs differ
        # + the starting point's files: a frozen tower's weights come from them under init.weights="pretrained"
        starts = ",".join(r["sha256"] for r in model.loaded_weights)
        fp = hashlib.sha1(f"{cfg.pretty_text}|{seed}|{source.identity}|{prec.name}|{starts}".encode()).hexdigest()[:12]
        for cname, cache in caches:
            cache.enabled = cache.enabled and bool(cfg.train.get("cache_frozen", True))
            if cache.enabled:
                cache.bind(out_dir / "cache" / f"frozen_{name}_{fp}_{cname or 'root'}.pt")
    fwd = model
    if world > 1:
        fwd = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    tc = cfg.train
    if tc.get("prior_bias", False):  # the classifier starts at the training labels' prior (SharedHead.init_prior)
        model.head.init_prior(label_prior(source.splits["train"]))
    gen = torch.Generator().manual_seed(seed)
    _, train_loader = make_loader(source, "train", cfg, needs, shuffle=True, generator=gen,
                                  skip_missing_frames=skip_missing_frames)
    accum = grad_accum(tc)
    total_steps = max(1, int(tc.epochs) * optimizer_steps(len(train_loader), accum))
    opt = torch.optim.AdamW(trainable, lr=tc.lr, weight_decay=tc.weight_decay)
    from transformers import get_linear_schedule_with_warmup  # BertAdam's warmup_linear schedule

    sched = get_linear_schedule_with_warmup(opt, int(tc.warmup_ratio * total_steps), total_steps)
    ema = WeightAverage(model, tc.ema) if tc.get("ema") else None  # the averaged weights are evaluated and saved

    start_epoch, train_time = 0, 0.0
    if force:  # retrain from scratch: neither the last epoch's checkpoint nor the final model is reused
        if main:
            ckpt_path.unlink(missing_ok=True)
            final_path.unlink(missing_ok=True)
        D.barrier()
    if final_path.is_file() and model_ok:
        model.load_state_dict(torch.load(final_path, weights_only=True, map_location=device))
        start_epoch = int(tc.epochs)
        if (work / "meta.json").is_file():  # keep the training time of the run that made the model
            train_time = float(json.loads((work / "meta.json").read_text()).get("train_time_s", 0.0))
        log.info("%s seed %d: trained model found, evaluating only", name, seed)
    elif ckpt_path.is_file() and ckpt_ok:
        st = torch.load(ckpt_path, weights_only=True, map_location="cpu")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optim"])
        sched.load_state_dict(st["sched"])
        prec.load_state_dict(st.get("scaler"))
        gen.set_state(st["gen"])
        if ema is not None:
            if "ema" not in st:
                raise UsageError(f"{ckpt_path}: the checkpoint has no averaged weights (train.ema); rerun with --force")
            ema.load_state_dict(st["ema"])
        torch.set_rng_state(st["torch_rng"])
        start_epoch, train_time = int(st["epoch"]), float(st["train_time"])
        log.info("%s seed %d: resuming after epoch %d", name, seed, start_epoch)

    for epoch in range(start_epoch, int(tc.epochs)):
        model.train()
        t0 = time.time()
        if world > 1:
            train_loader.sampler.set_epoch(epoch)
        bar = tqdm(train_loader, desc=f"{name} s{seed} ep{epoch + 1}/{tc.epochs}", leave=False,
                   disable=not (progress and main))
        for i, batch in enumerate(bar):
            skips.frames_met(batch.pop("_skipped", []), "train")
            if not batch["key"]:  # every clip of the batch unreadable and skipped on request
                continue
            batch = normalise_batch(_to(text_cache.add_to_batch(batch, needs), device), cfg.data.mean, cfg.data.std)
            with prec.autocast():
                losses = fwd(batch)["losses"]  # the shared loss, the candidate choice's and the method's own
            if not torch.isfinite(losses["loss"]):
                raise FloatingPointError(f"{name} seed {seed}: non-finite loss at epoch {epoch + 1}; "
                                         f"bce={losses['bce'].item()}, mse={losses['mse'].item()}")
            if i % accum == 0:
                opt.zero_grad(set_to_none=True)
            prec.backward(losses["loss"], accum)
            if is_step_boundary(i, len(train_loader), accum):
                prec.step(opt, trainable, tc.get("grad_clip"))
                sched.step()
                if ema is not None:
                    ema.update(model)
            bar.set_postfix(loss=f"{losses['loss'].item():.3f}")
        train_time += time.time() - t0
        if main:
            for _, cache in caches:
                cache.save()
            _atomic_torch_save({"model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict(),
                                "gen": gen.get_state(), "torch_rng": torch.get_rng_state(), "epoch": epoch + 1,
                                "train_time": train_time, "scaler": prec.state_dict(),
                                **({"ema": ema.state_dict()} if ema is not None else {}),
                                "provenance": {k: prov[k] for k in ("train_digest", "data")}}, ckpt_path)
        D.barrier()
        faultpoint.after_epoch(name, epoch + 1)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            raise Interrupted(f"stopped after epoch {epoch + 1} on request")
    if world > 1:  # DDP syncs gradients, not buffers: give every rank rank 0's BatchNorm statistics to evaluate with
        D.broadcast_buffers(model)
    if ema is not None and start_epoch < int(tc.epochs):  # (a found final model already holds the average)
        ema.copy_to(model)
    if main and not final_path.is_file():
        _atomic_torch_save(model.state_dict(), final_path)
    if main:  # rewritten on an evaluation-only rerun too: the config digest then names the new eval settings
        write_json_atomic(work / "meta.json", {"method": name, "config_set": cfg.config_set, "seed": seed,
                                               "epochs": int(tc.epochs), "train_time_s": train_time, **prov})

    rows = []
    n_train = len(train_loader.dataset)
    for split in splits:
        t0 = time.time()
        metrics = evaluate_split(model, source, split, cfg, text_cache, out_dir, name, seed, device, progress,
                                 skip_missing_frames, counter=skips, precision=prec)
        if not main:
            continue
        row = make_row(**{
            "method": name, "family": info.family, "paper_name": info.paper_name, "origin": info.origin,
            "split": split, "seed": seed, **metrics, "protocol": cfg.eval.get("average", "weighted"),
            "iou_gate": cfg.eval.get("iou_gate"), "config_set": cfg.config_set, "epochs": int(tc.epochs),
            "train_instances": n_train, "train_time_s": round(train_time, 2), "eval_time_s": round(time.time() - t0, 2),
            "train_clips_per_s": round(n_train * int(tc.epochs) / train_time, 1) if train_time > 0 else float("nan"),
            "params": count_params(model), "trainable_params": count_params(model, trainable_only=True),
            "precision": prec.name, "text_path": getattr(model.method, "text_path", None) or "",
            # every weights file loaded into the method: file, sha256, layout, tensors set / total (issue 24)
            "loaded_weights": json.dumps(model.loaded_weights, sort_keys=True),
            **skips.row(split), **prov})  # the split's skip counts (skipped_instances included) as the counter has them
        write_json_atomic(result_path(out_dir, name, split, seed), row)
        rows.append(row)
        if row["no_detection_count"]:
            log.warning("%s seed %d, %s: %d key frames had no usable detection; the method fell back to the whole "
                        "frame", name, seed, split, row["no_detection_count"])
    return rows


def evaluate_split(model, source, split, cfg, text_cache, out_dir, name, seed, device="cpu", progress=False,
                   skip_missing_frames=False, counter=None, precision=None) -> dict:
    """Predictions (saved), metrics, bootstrap CIs, by-people breakdown, swap control, rephrasing."""
    e = cfg.eval
    pdir = Path(out_dir) / "predictions"

    main = D.is_main()

    def run(instances=None, tag="", net=None):
        ds, loader = make_loader(source, split, cfg, model.needs, shuffle=False,
                                 skip_missing_frames=skip_missing_frames, instances=instances)
        order = [i.key for i in ds.instances] if D.rank_world()[1] > 1 else None
        met = counter.for_split(split) if counter is not None and not tag else None
        pred = predict(model if net is None else net, loader, text_cache, device, progress and main,
                       desc=f"{name} {split}{tag}", order=order, counter=met, precision=precision)
        if main:
            save_predictions(pred, pdir / f"{name}__{split}__seed{seed}{tag}.npz")
        return pred, ds

    # every rank makes the same predictions (they gather together); only rank 0 scores them
    if hasattr(model.method, "no_detection_count"):  # counted per split, on the split's own pass only
        model.method.no_detection_count = 0
    pred, ds = run()
    no_det = int(getattr(model.method, "no_detection_count", 0))
    kept = ds.instances  # without the instances skipped for unreadable frames (counted in the row)
    swapped = ev.swapped_references(kept) if e.get("swap_control", True) else []
    pred_swapped = run(swapped, "__swap")[0] if swapped else None
    rephrased = [run(ev.rephrased_instances(kept, v, source.root, seed=0), f"__rephrase{v}")[0]
                 for v in (1, 2)] if e.get("rephrase", False) else []
    controls = diag.control_predictions(lambda i, t, n: run(i, t, n)[0], model, source, split, e)
    if not main:
        return None
    out = ev.score_predictions(pred, e.get("iou_gate"))
    out["skipped_instances"] = len(ds.skipped)
    out["no_detection_count"] = no_det
    if e.get("n_boot", 0):
        out.update(ev.confidence_intervals(pred, int(e.n_boot), seed))
    out.update(ev.by_people(pred, source.splits[split]))
    if pred_swapped is not None and len(pred_swapped["keys"]):
        out.update(ev.swap_control(pred, pred_swapped))
    if rephrased:
        vals = [{k: out[k] for k in ("mIoU", "mAP", "AUROC")}] + [ev.core_metrics(p) for p in rephrased]
        for m in ("mIoU", "mAP", "AUROC"):
            out[f"rephrase_{m}"] = float(np.mean([v[m] for v in vals]))
    out.update(diag.diagnostics(pred, source, split, controls))  # factor breakdowns and controls (synthetic data)
    return out
