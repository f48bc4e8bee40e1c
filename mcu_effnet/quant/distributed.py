"""Data-parallel plumbing: who am I under ``torchrun``, and the few collectives training needs.

Without ``torchrun`` (no WORLD_SIZE in the environment) everything here degrades to a single
process: rank 0 of 1, collectives are identities. Under ``torchrun`` the process group is
gloo on CPU and nccl on CUDA; only rank 0 prints and writes files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

from mcu_effnet.errors import UserError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError(
                "device cuda: no CUDA device is available (use device cpu or auto)", options=("device",)
            )
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed(device_choice: str) -> DistContext:
    """Joins the process group when started by ``torchrun`` (idempotent); else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], ctx: DistContext) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64, so counts stay exact)."""
    if not ctx.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every process if ``flag`` is true on any (used for Ctrl-C and NaN, so all stop together)."""
    return all_reduce_sum([1.0 if flag else 0.0], ctx)[0] > 0


def broadcast_object(value, ctx: DistContext):
    """Rank 0's ``value`` on every process (e.g. the run folder name, which has a timestamp)."""
    if not ctx.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start an epoch part-way through, for resuming an interrupted one.

    The order of an epoch depends only on (seed, epoch), so skipping the first ``start`` indices of
    this rank's share gives exactly the batches the interrupted run had not yet seen. Used with one
    process too (rank 0 of 1), so single-process and distributed runs shuffle the same way.
    """

    def __init__(self, length: int, ctx: DistContext, *, seed: int, shuffle: bool = True) -> None:
        # DistributedSampler only needs a dataset for its length.
        super().__init__(
            range(length),
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=False,
        )
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardSampler(Sampler[int]):
    """Evaluation: this rank's every world_size-th image, no padding, so summed counts are exact."""

    def __init__(self, length: int, ctx: DistContext) -> None:
        self.indices = list(range(ctx.rank, length, ctx.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
