"""Sampling throughput of `textimg eval`: prompts batched per network call against one call per
prompt (the baseline, what eval did before `--sample-batch`), in one process.

The model is the recipe's, untrained (speed does not depend on the weights). Each setting draws
the same prompts with DDIM; settings take turns round by round, so a busy machine slows all of
them alike and the ratio to the baseline holds where absolute images/s do not.

    python benchmarks/eval_sampling.py cpu-proof-short --prompts 64 --steps 50 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from textimg.config import load_recipe
from textimg.diffusion import GaussianDiffusion
from textimg.model import build_model
from textimg.sampling import sample


def draw(model, diffusion, prompts: list[str], batch: int, steps: int, guidance: float) -> None:
    """Every prompt once, `batch` prompts per `sample` call, each from its own seed."""
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        seeds = list(range(start, start + len(chunk)))
        sample(model, diffusion, chunk, steps=steps, guidance=guidance, seed=seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps per image")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = load_recipe(args.recipe)
    torch.manual_seed(0)
    model = build_model(config)
    diffusion = GaussianDiffusion.from_config(config.diffusion)
    prompts = [f"K{i % 10}{chr(65 + i % 26)}" for i in range(args.prompts)]
    settings = [(g, b) for g in args.guidance for b in args.batches]
    times: dict[tuple[float, int], list[float]] = {s: [] for s in settings}
    draw(model, diffusion, prompts[:2], 2, 2, 1.0)  # warm-up
    for _ in range(args.rounds):
        for guidance, batch in settings:
            started = time.perf_counter()
            draw(model, diffusion, prompts, batch, args.steps, guidance)
            times[guidance, batch].append(time.perf_counter() - started)

    print(f"{args.recipe}: {args.prompts} prompts x {args.steps} DDIM steps, "
          f"{args.threads} thread(s), median of {args.rounds} rounds")  # fmt: skip
    print(f"{'guidance':>8} {'prompts/call':>12} {'seconds':>8} {'images/s':>9} {'vs 1/call':>9}")
    for guidance, batch in settings:
        seconds = statistics.median(times[guidance, batch])
        baseline = statistics.median(times[guidance, args.batches[0]])
        print(f"{guidance:>8g} {batch:>12} {seconds:>8.2f} {args.prompts / seconds:>9.1f} "
              f"{baseline / seconds:>8.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
