"""Training on several processes with PyTorch DistributedDataParallel.

Launch ``train`` with ``torchrun`` (one process per GPU, or a few per CPU node)::

    torchrun --standalone --nproc-per-node 2 -m mixinvert train corpus/ --out runs/ddp
    torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        -m mixinvert train corpus/ --out /shared/runs/ddp

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``MASTER_ADDR``; :func:`init_from_env`
joins the process group from them (gloo: the training step runs on CPUs; this build
trains on CPUs only). Without them nothing changes: the single-process path is the
default and stays as it was.

How the work divides (see :func:`mixinvert.train.essl.train`):

- Sampling step: every rank draws the same excerpts and noise (the same seed), then works
  only on its shard of the songs (song j goes to rank j mod world size): its features,
  predictions and renders run on that rank's executor. The union of the ranks' pairs is
  exactly the single-process step's pairs.
- Training step: each rank trains on its own pairs; DDP averages the gradients, so the
  ranks' weights stay identical and the effective batch is ``batch_size x world size``.
  Ranks with fewer pairs than others join with DDP's ``Join`` (no hang on uneven shards).
- Validation, checkpoints, the log and the model file: rank 0 alone. The run folder must
  be on a file system every node sees (a resumed run reads its checkpoint on every rank).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place in a distributed run."""

    rank: int
    world: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, j: int) -> bool:
        """Whether song ``j`` of a step belongs to this rank's shard."""
        return j % self.world == self.rank

    def sum(self, *values: float) -> list[float]:
        """Sum numbers over the ranks (every rank gets the sums)."""
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env() -> Dist | None:
    """Join the process group torchrun describes (gloo); None when not launched by it."""
    if not launched_by_torchrun():
        return None
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def current() -> Dist | None:
    """The running process group (several ranks) or None."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Dist(dist.get_rank(), dist.get_world_size())
    return None


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
