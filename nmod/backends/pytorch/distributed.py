"""torch.distributed plumbing: process group set-up from torchrun's environment, sharding, gathering."""
from __future__ import annotations

import atexit
import gc
import os
from dataclasses import dataclass
from typing import Any, List, Optional

import torch
import torch.distributed as dist

__all__ = ["DistributedContext", "init_distributed", "shutdown"]


@dataclass
class DistributedContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_true(self, flag: bool, device: torch.device) -> bool:
        """Every rank gets the same answer, so all ranks agree on when to stop or skip."""
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def gather_objects(self, obj: Any) -> List[Any]:
        if not self.enabled:
            return [obj]
        out: List[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def shutdown() -> None:
    """Leave together, and leave nothing of the process group to the interpreter's teardown.

    A gloo work object (the last all-reduce of DDP's reducer, an all_gather_object) can outlive the
    training step in a reference cycle (DDP's autograd hooks hold its reducer). Freed only by the
    interpreter's final collection, it destroys tensors after Python has begun shutting down, and the
    C++ runtime aborts the rank with "terminate called without an active exception" (pytorch/pytorch
    PR 179291, issue 190489): a finished torchrun job exits non-zero. So the cycles are collected
    while the interpreter is whole, the ranks meet, and the group is destroyed, before exit.
    """
    if dist.is_initialized():
        gc.collect()
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
            gc.collect()


def init_distributed(local_rank: Optional[int], device_type: str) -> DistributedContext:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR, ...), if any.

    NCCL on GPUs, gloo on CPUs. Multi-node rendezvous is torchrun's job; we only read its variables.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size <= 1:
        return DistributedContext(rank=0, local_rank=local_rank, world_size=1)
    rank = int(os.environ.get("RANK", str(local_rank)))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        # Tear the group down before the interpreter does: a gloo group left to C++ destructors can
        # abort ("terminate called without an active exception") when ranks exit at different times.
        atexit.register(shutdown)
    return DistributedContext(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size())
