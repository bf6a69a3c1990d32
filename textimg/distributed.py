"""Where this process runs: its torchrun rank, its device, the process group, and the gather
that brings every rank's results to rank 0.

Training and evaluation both run as one plain process or as torchrun's ranks; both read the same
environment the same way, so a command behaves alike under `torchrun` whichever it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from textimg.errors import TextimgError, check_choice

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Placement:
    """This process's place under torchrun (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`); rank 0 of 1
    otherwise."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> Placement:
        """Read torchrun's variables; a plain process is rank 0 of 1."""
        return cls(
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def distributed(self) -> bool:
        """True under torchrun, even with one rank: DDP then wraps the model all the same."""
        return "RANK" in os.environ

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def wants_cuda(device: str) -> bool:
    """Whether `device` (auto | cpu | cuda, or `cuda:N`) means a GPU; refuses a missing one."""
    import torch

    if not device.startswith("cuda:"):
        check_choice("device", device, DEVICES)
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise TextimgError(f"device {device!r} was asked for but no CUDA device is available")
    return cuda


def resolve_device(device: str, place: Placement):
    """The torch device of this rank: its local GPU under `cuda`/`auto` with one, else the CPU."""
    import torch

    if device.startswith("cuda:"):
        wants_cuda(device)
        return torch.device(device)
    return torch.device(f"cuda:{place.local_rank}" if wants_cuda(device) else "cpu")


def start_process_group(place: Placement, cuda: bool) -> bool:
    """Join torchrun's process group unless one exists (NCCL on GPUs, gloo on CPUs); True if this
    call started it, so the caller knows to tear it down."""
    import torch
    import torch.distributed as dist

    if not place.distributed or dist.is_initialized():
        return False
    if cuda:
        torch.cuda.set_device(place.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    return True


def gather_to_main(
    part: Any, error: Exception | None, place: Placement, work: str = "the work"
) -> list[Any]:
    """Every rank's `part` on rank 0, in rank order (other ranks get []): gloo on CPU, NCCL on GPU.

    Ranks first exchange whether they failed (`error`), so one rank's error stops every rank with
    a message naming it ("`work` failed on rank N: ..."), instead of leaving the others waiting
    in the gather forever. A rank that failed raises its own error.
    """
    if place.world_size == 1:
        if error is not None:
            raise error
        return [part]
    import torch.distributed as dist

    statuses: list[Any] = [None] * place.world_size
    dist.all_gather_object(statuses, None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    failed = [f"rank {rank}: {status}" for rank, status in enumerate(statuses) if status]
    if failed:
        raise TextimgError(f"{work} failed on " + "; ".join(failed))
    gathered: list[Any] = [None] * place.world_size if place.rank == 0 else []
    dist.gather_object(part, gathered if place.rank == 0 else None, dst=0)
    return gathered
