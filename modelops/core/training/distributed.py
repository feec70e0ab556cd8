"""Data-parallel training across the processes `torchrun` / `accelerate launch` start (one per GPU).

Every process holds the whole (small) trainable state, trains on its share of each batch, and the gradients are
averaged before each optimiser step, so all processes keep identical weights. Alone (no WORLD_SIZE > 1) nothing here
does anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def world() -> tuple[int, int]:
    """(rank of this process, number of processes); (0, 1) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def join_process_group() -> bool:
    """Join the group torchrun describes in the environment (NCCL on GPUs, Gloo on CPUs); False when alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(index_batches: list[list[int]]) -> list[list[int]]:
    """This process's rows of every batch; batches smaller than the group are dropped so every process steps
    together."""
    rank, size = world()
    if size == 1:
        return index_batches
    return [batch[rank::size] for batch in index_batches if len(batch) >= size]


def average_gradients(params: Sequence[torch.Tensor]) -> None:
    """All-reduce the gradients of `params` into their mean over the group, as one flat tensor (one message)."""
    import torch
    import torch.distributed as dist

    _, size = world()
    if size == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for param, grad in zip(params, grads, strict=True):
        param.grad = flat[offset : offset + grad.numel()].view_as(grad)
        offset += grad.numel()


def broadcast_from_first(value: Any) -> Any:
    """`value` as the first process holds it (e.g. the job it read from Dagster Pipes), on every process."""
    import torch.distributed as dist

    if world()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
