"""Where this process runs: its torchrun rank, its device, and the process group.

Training and evaluation both run as one plain process or as torchrun's ranks; both read the same
environment the same way, so a command behaves alike under `torchrun` whichever it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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
