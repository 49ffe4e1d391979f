"""Training on several processes with PyTorch DistributedDataParallel.

Launch ``train`` with ``torchrun`` (one process per GPU, or a few per CPU node)::

    torchrun --standalone --nproc-per-node 2 -m mixinvert train corpus/ --out runs/ddp
    torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        -m mixinvert train corpus/ --out /shared/runs/ddp

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``;
:func:`init_from_env` joins the process group from them: NCCL when the training step runs
on GPUs (each process takes the GPU of its ``LOCAL_RANK``), gloo on CPUs. Without them
nothing changes: the single-process path is the default and stays as it was.

Where the training step runs is ``--device`` (:func:`resolve_device`): ``auto`` (a GPU when
torch sees one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``. The sampling step's renders
and forward passes stay on the executor's CPUs either way (most of an iteration is
rendering; the network's weights go to the workers as CPU tensors).

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

from mixinvert.errors import InputError


def resolve_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """The device of the training step: ``auto`` (CUDA when available, else CPU), ``cpu``,
    ``cuda`` (the GPU of ``local_rank``, modulo the GPUs visible) or ``cuda:N``. Asking
    for CUDA where torch sees no GPU is a clear error, not a silent fallback."""
    requested = str(requested).strip().lower()
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {requested}: torch sees no CUDA GPU here (a CPU-only build of torch, or no "
                             "GPU visible); use --device cpu")
        count = torch.cuda.device_count()
        index = local_rank % count if requested == "cuda" else int(requested.split(":", 1)[1])
        if not 0 <= index < count:
            raise InputError(f"--device {requested}: only {count} GPU(s) visible")
        return torch.device("cuda", index)
    raise InputError(f"--device {requested!r}: expected auto, cpu, cuda or cuda:N")


def backend_for(device: torch.device) -> str:
    """The process-group backend for training on ``device``: NCCL on GPUs, gloo on CPUs."""
    return "nccl" if device.type == "cuda" else "gloo"


@dataclass(frozen=True)
class Dist:
    """This process's place in a distributed run, and the device of its training step."""

    rank: int
    world: int
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, j: int) -> bool:
        """Whether song ``j`` of a step belongs to this rank's shard."""
        return j % self.world == self.rank

    def sum(self, *values: float) -> list[float]:
        """Sum numbers over the ranks (every rank gets the sums)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)  # NCCL reduces GPU tensors only
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().tolist()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device: str = "auto") -> Dist | None:
    """Join the process group torchrun describes (NCCL for a GPU ``device``, else gloo);
    None when not launched by it."""
    if not launched_by_torchrun():
        return None
    where = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    if where.type == "cuda":
        torch.cuda.set_device(where)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend_for(where))
    return Dist(dist.get_rank(), dist.get_world_size(), str(where))


def current() -> Dist | None:
    """The running process group (several ranks) or None."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        # NCCL groups train on each rank's current GPU (set by init_from_env), gloo on CPUs
        device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
        return Dist(dist.get_rank(), dist.get_world_size(), device)
    return None


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
