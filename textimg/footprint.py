"""What a run's network costs before it trains: parameters, FLOPs, memory, the batch that fits.

`textimg train RECIPE --dry-run` prints it. The network is built and run on fake tensors
(`FakeTensorMode`: shapes and dtypes, no storage), so even the 256 px `sr` recipe is measured in
seconds on a laptop: forward FLOPs come from `torch.utils.flop_counter`, activation memory from
the tensors autograd saves for the backward pass (each storage counted once), under bf16
autocast as the GPU trains. A batch of two minus a batch of one is the memory per image; the rest
(bf16 copies of the weights, position tables) is fixed per step.

The largest batch that fits a GPU is then `(memory - reserve - states - fixed) / per image`,
where states are 20 bytes per parameter (fp32 weights, gradients, AdamW's two moments, the EMA
copy) and the reserve is 1 GiB for the CUDA context and cuBLAS/cuDNN workspaces plus a tenth of
the rest for allocator fragmentation and the backward pass's transient gradients. An estimate:
kernels chosen on the GPU (fused attention keeps no score matrix) may store less than the CPU's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from textimg.config import RunConfig
from textimg.errors import TextimgError

STATE_BYTES_PER_PARAMETER = 4 + 4 + 8 + 4
"""fp32 weights, gradients, AdamW's exp_avg and exp_avg_sq, the EMA weights."""

CONTEXT_RESERVE = 2**30
"""CUDA context and library workspaces, never available to tensors."""

FRAGMENTATION = 0.1
"""Share of the remaining memory kept free for the allocator and transient gradients."""


@dataclass(frozen=True)
class Footprint:
    """One training step's cost for a config; memory in bytes, FLOPs per image."""

    parameters: int
    forward_flops: float
    activation_bytes_per_image: float
    fixed_activation_bytes: float

    @property
    def state_bytes(self) -> int:
        """Weights, gradients, optimizer moments and EMA."""
        return self.parameters * STATE_BYTES_PER_PARAMETER

    def step_bytes(self, batch: int) -> float:
        """Estimated peak memory of a training step at `batch` images."""
        activations = self.fixed_activation_bytes + batch * self.activation_bytes_per_image
        return CONTEXT_RESERVE + (self.state_bytes + activations) / (1 - FRAGMENTATION)

    def largest_batch(self, memory_bytes: float) -> int:
        """The most images per step whose `step_bytes` fit in `memory_bytes` (0 if none)."""
        usable = (memory_bytes - CONTEXT_RESERVE) * (1 - FRAGMENTATION)
        free = usable - self.state_bytes - self.fixed_activation_bytes
        return max(0, int(free // self.activation_bytes_per_image))


def parse_memory(text: str) -> float:
    """Bytes in "80GB", "80 GiB", "40000MB" (GB = 10^9 bytes, GiB = 2^30)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", text, re.IGNORECASE)
    if not match:
        raise TextimgError(f"--gpu-memory {text!r}: give a size such as 80GB or 141GiB")
    number, unit = float(match[1]), match[2].upper()
    power = "KMGT".index(unit[0]) + 1
    return number * (1024**power if "I" in unit else 1000**power)


def measure(config: RunConfig) -> Footprint:
    """Build the config's network on fake tensors and run its forward at batches 1 and 2."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    from textimg.model import build_model

    with FakeTensorMode():
        model = build_model(config)
        saved, flops = [], []
        for batch in (1, 2):
            storages: dict[int, int] = {}

            def keep(tensor: torch.Tensor, storages: dict[int, int] = storages) -> torch.Tensor:
                storage = tensor.untyped_storage()
                storages[storage._cdata] = storage.nbytes()
                return tensor

            counter = FlopCounterMode(display=False)
            with (
                counter,
                torch.autocast("cpu", dtype=torch.bfloat16),
                torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor),
            ):
                model(**_inputs(config, batch))
            saved.append(sum(storages.values()))
            flops.append(counter.get_total_flops())
    per_image = saved[1] - saved[0]
    return Footprint(
        parameters=sum(p.numel() for p in model.parameters()),
        forward_flops=flops[0],
        activation_bytes_per_image=per_image,
        fixed_activation_bytes=saved[0] - per_image,
    )


def _inputs(config: RunConfig, batch: int) -> dict[str, torch.Tensor]:
    """Training-shaped inputs: the longest transcript the context holds, the low-res image of a
    super-resolution model, a draft x0 for a self-conditioned one."""
    m, low = config.model, config.super_resolution.low_res_size
    x = torch.randn(batch, m.image_channels, m.image_size, m.image_size)
    inputs = {
        "x": x,
        "t": torch.rand(batch) * 999,
        "tokens": torch.randint(5, 90, (batch, m.context_length)),
    }
    if low:
        inputs["low_res"] = torch.randn(batch, m.image_channels, low, low)
    if m.self_condition:
        inputs["self_cond"] = torch.randn_like(x)
    return inputs


def table(name: str, config: RunConfig, footprint: Footprint, memory_bytes: float) -> str:
    """The dry run's Markdown table for one config."""
    batch = config.train.batch_size
    rows = [
        ("parameters", f"{footprint.parameters / 1e6:.1f} M"),
        ("forward GFLOP / image", f"{footprint.forward_flops / 1e9:.1f}"),
        ("training GFLOP / image (3 x forward)", f"{3 * footprint.forward_flops / 1e9:.1f}"),
        ("activations / image (bf16)", f"{footprint.activation_bytes_per_image / 2**20:,.0f} MiB"),
        ("activations, fixed per step", f"{footprint.fixed_activation_bytes / 2**20:,.0f} MiB"),
        ("weights, gradients, AdamW, EMA", f"{footprint.state_bytes / 2**30:.2f} GiB"),
        (f"step at the recipe's batch {batch}", f"{footprint.step_bytes(batch) / 2**30:.1f} GiB"),
        (
            f"largest batch in {memory_bytes / 1e9:g} GB",
            str(footprint.largest_batch(memory_bytes)),
        ),
    ]
    lines = [f"| {name} | |", "|---|---|"] + [f"| {what} | {value} |" for what, value in rows]
    return "\n".join(lines)
