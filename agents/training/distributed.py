"""Several processes under `torchrun`: which one am I, and the few collectives the loop needs.

    torchrun --nproc_per_node=4 scripts/train.py preset=gpu          # 4 GPUs, NCCL
    torchrun --nproc_per_node=2 scripts/train.py preset=debug device=cpu   # 2 CPU processes, gloo

Without torchrun (no WORLD_SIZE in the environment) everything here is a no-op for one process.
Each rank collects with its own envs and seeds into its own replay; gradients are all-reduced by
DistributedDataParallel, so the parameters stay identical; rank 0 alone logs, evaluates, writes
videos and commits checkpoints (every rank adds its replay and RNG states to them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs, evaluates and commits checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, *counts: int) -> tuple[int, ...]:
        """Each of `counts` summed over ranks, in one all-reduce."""
        if not self.enabled:
            return counts
        t = torch.tensor(counts, dtype=torch.int64, device=self._device())
        dist.all_reduce(t)
        return tuple(int(x) for x in t)

    def broadcast(self, value):
        """Rank 0's `value` (any picklable object) on every rank."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def _device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str) -> Distributed:
    """Join the process group torchrun set up (NCCL for CUDA devices, gloo for CPU); a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Distributed(rank=rank, world=world, local_rank=local_rank)


def rank_device(device: torch.device, ctx: Distributed) -> torch.device:
    """Each rank's own GPU (`cuda:<local rank>`); CPU stays CPU. Nothing assumes cuda:0."""
    if ctx.enabled and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


__all__ = ["Distributed", "init_distributed", "rank_device"]
