"""Data-parallel training and evaluation under torchrun (DDP; NCCL on GPUs, gloo on CPU).

Evaluation splits a split's instances rank::world with NO padding (DistributedSampler would pad with
duplicates) and gathers every rank's predictions, so each instance is scored exactly once.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_world()[0] == 0


def init_from_env() -> str | None:
    """Join the process group torchrun describes (WORLD_SIZE > 1); returns the device to use, or None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return None
    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return "cpu"


def barrier() -> None:
    if rank_world()[1] > 1:
        dist.barrier()


def broadcast_buffers(model: torch.nn.Module) -> None:
    for b in model.buffers():
        dist.broadcast(b.data, 0)


def shard(n: int) -> list[int]:
    rank, world = rank_world()
    return list(range(rank, n, world))


def gather_predictions(pred: dict, order: list[str]) -> dict:
    """Every rank's predictions, concatenated and put in ``order`` (the dataset's key order)."""
    import numpy as np

    rank, world = rank_world()
    if world == 1:
        return pred
    parts = [None] * world
    dist.all_gather_object(parts, pred)
    keys = sum((p["keys"] for p in parts), [])
    if len(keys) != len(set(keys)) or set(keys) != set(order):
        raise RuntimeError(f"distributed evaluation gathered {len(keys)} predictions for {len(order)} instances")
    pos = {k: i for i, k in enumerate(keys)}
    idx = np.array([pos[k] for k in order])
    out = {"keys": list(order)}
    for k in ("scores", "boxes", "labels", "gt_boxes"):
        out[k] = np.concatenate([p[k] for p in parts])[idx]
    return out
