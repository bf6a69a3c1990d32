"""Training-step throughput of recipe variants against the recipe itself, in one process.

Each variant is the recipe plus `--set`-style overrides. The models take turns (one training
step each: forward, backward, AdamW, on random images, timesteps and transcripts), so a busy
machine slows all of them alike and the ratio to the recipe holds where absolute img/s do not.
Each model is laid out, optimised and compiled as the trainer does it on the CPU (fp32,
`train.memory_format`, `train.fused_optimizer`, `train.compile`) at its own
`train.batch_size` unless `--batch-size` is given. Also reports parameters, forward FLOPs per image
(`torch.utils.flop_counter`) and the seconds of the untimed warm-up steps, where
`torch.compile` pays its compile time: a budgeted run must win that back.

    python benchmarks/variants.py cpu-proof-short "model.text_resolutions=[8,16,32]"
    python benchmarks/variants.py cpu-proof-short --threads 2 --steps 40 \\
        "train.memory_format=contiguous;train.fused_optimizer=false" "train.batch_size=8"
    python benchmarks/variants.py cpu-proof-short --threads 2 --steps 40 "train.compile=true"

A variant is one argument, its overrides separated by `;`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from textimg.config import RunConfig, apply_overrides, load_recipe
from textimg.model import build_model
from textimg.train import uses_channels_last, uses_compile

WARMUP_STEPS = 2  # untimed first steps per model: allocation, oneDNN primitives, compiling


@dataclass
class Variant:
    """One model under test: `network` is `model` compiled, or `model` itself."""

    name: str
    config: RunConfig
    model: torch.nn.Module
    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    batch: int
    times: list[float] = field(default_factory=list)  # seconds per step, warm-up steps first

    def images_per_second(self) -> float:
        return self.batch / statistics.median(self.times[WARMUP_STEPS:])

    def warmup_seconds(self) -> float:
        return sum(self.times[:WARMUP_STEPS])


def random_batch(config: RunConfig, batch: int) -> tuple[torch.Tensor, ...]:
    size, channels = config.model.image_size, config.model.image_channels
    return (
        torch.randn(batch, channels, size, size),
        torch.randint(0, config.diffusion.steps, (batch,)),
        torch.randint(1, 30, (batch, config.model.context_length)),
    )


def forward_flops(model: torch.nn.Module, config: RunConfig) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*random_batch(config, 1))
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("variants", nargs="*", help='overrides, ";"-separated, per variant')
    parser.add_argument("--batch-size", type=int, help="one batch for all (default: each recipe's)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_intermixed_args()
    torch.set_num_threads(args.threads)

    runs: list[Variant] = []
    for variant in ["", *args.variants]:
        overrides = [item for item in variant.split(";") if item]
        config = apply_overrides(load_recipe(args.recipe), overrides)
        model = build_model(config)
        if uses_channels_last(config.runtime, cuda=False):
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=1e-4, fused=config.runtime.fused_optimizer
        )
        runs.append(
            Variant(
                name=variant or args.recipe,
                config=config,
                model=model,
                network=torch.compile(model) if uses_compile(config.runtime, cuda=False) else model,
                optimizer=optimizer,
                batch=args.batch_size or config.train.batch_size,
            )
        )

    for _ in range(WARMUP_STEPS + args.steps):
        for run in runs:
            x, t, tokens = random_batch(run.config, run.batch)
            started = time.perf_counter()
            loss = run.network(x, t, tokens).float().pow(2).mean()
            run.optimizer.zero_grad()
            loss.backward()
            run.optimizer.step()
            run.times.append(time.perf_counter() - started)

    base = runs[0].images_per_second()
    print(
        f"| variant of {args.recipe} | params | MFLOP/img fwd | batch | img/s | vs recipe "
        "| warm-up s |"
    )
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        rate = run.images_per_second()
        params = sum(p.numel() for p in run.model.parameters()) / 1e6
        flops = forward_flops(run.model, run.config) / 1e6
        print(
            f"| {run.name} | {params:.2f}M | {flops:.1f} | {run.batch} | {rate:.1f} "
            f"| {rate / base:.2f}x | {run.warmup_seconds():.2f} |"
        )


if __name__ == "__main__":
    main()
