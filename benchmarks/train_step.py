"""CPU training-step throughput of one recipe under layout, optimizer and precision variants.

Every variant is a full training step (forward, Min-SNR loss, backward, gradient clipping, AdamW)
of the recipe's model, built from the same seed. The variants run in rounds, a few steps each in
turn, inside one process, so load from other jobs hits all of them alike; the first variant is the
baseline every ratio is against. Variants are `bB:FLAGS`, with FLAGS any of `cl` (channels-last
weights), `fused` (fused AdamW), `bf16` (CPU bfloat16 autocast) or `plain`:

    python benchmarks/train_step.py --threads 2
    python benchmarks/train_step.py --recipe cpu-proof-lines --variants b16:plain,b16:clfused
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from dataclasses import dataclass, field

import torch

from textimg.config import load_recipe
from textimg.diffusion import GaussianDiffusion
from textimg.model import build_model

DEFAULT_VARIANTS = "b16:plain,b16:fused,b16:clfused,b16:clfusedbf16,b8:plain,b8:clfused"


@dataclass
class Variant:
    """One configuration under test and the step times measured for it."""

    name: str
    batch: int
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    bf16: bool
    times: list[float] = field(default_factory=list)


def make_variant(spec: str, recipe: str) -> Variant:
    batch, flags = spec.split(":")
    config = load_recipe(recipe)
    torch.manual_seed(0)
    model = build_model(config)
    if "cl" in flags:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused="fused" in flags)
    return Variant(spec, int(batch.removeprefix("b")), model, optimizer, "bf16" in flags)


def timed_step(variant: Variant, diffusion: GaussianDiffusion, size: int, context: int) -> float:
    b = variant.batch
    x0, t = torch.randn(b, 1, size, size), torch.randint(0, diffusion.num_steps, (b,))
    tokens = torch.randint(1, 40, (b, context))
    precision = (
        torch.autocast("cpu", dtype=torch.bfloat16) if variant.bf16 else contextlib.nullcontext()
    )
    started = time.perf_counter()
    with precision:
        loss = diffusion.training_losses(variant.model, x0, t, tokens, torch.randn_like(x0))
    loss["loss"].mean().backward()
    torch.nn.utils.clip_grad_norm_(variant.model.parameters(), 1.0)
    variant.optimizer.step()
    variant.optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="cpu-proof-short")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated bB:FLAGS")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of steps per variant")
    parser.add_argument("--steps", type=int, default=6, help="steps per variant per round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_recipe(args.recipe)
    diffusion = GaussianDiffusion.from_config(config.diffusion)
    variants = [make_variant(spec, args.recipe) for spec in args.variants.split(",")]
    size, context = config.model.image_size, config.model.context_length
    for round_index in range(args.rounds + 1):
        for variant in variants:
            times = [timed_step(variant, diffusion, size, context) for _ in range(args.steps)]
            if round_index:  # round 0 warms up every variant
                variant.times += times[1:]
    print(f"{args.recipe}, {args.threads} threads, median of {len(variants[0].times)} steps")
    print(f"| variant | images/s | x {variants[0].name} |\n|---|---|---|")
    baseline = variants[0].batch / statistics.median(variants[0].times)
    for variant in variants:
        rate = variant.batch / statistics.median(variant.times)
        print(f"| {variant.name} | {rate:.1f} | {rate / baseline:.2f} |")


if __name__ == "__main__":
    main()
