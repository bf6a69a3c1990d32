"""Does a textimg model learn to write? Three tasks and the cascade end to end on a CPU.

For each task (`textimg.learning`: its `Task` and `run_chain`): write training strings and
held-out prompts (never rendered for training), render the corpus, train the task's recipe,
sample the held-out prompts with and without guidance, and OCR-score them (EasyOCR, upscaled)
against their own prompts (the score), a derangement of the prompts (chance) and clean renderings
of the held-out prompts (the ceiling).

  short         2-3 characters of A-Z 0-9 anywhere in a 32 px image, two bold fonts, recipe
                `cpu-proof-short`.  Bar: exact >= 0.9 x ceiling within 30 minutes all told.
  short-center  the same with every string in the middle of its image, recipe
                `cpu-proof-short-center` (pooled text, self-conditioning, 8,200 steps).
  lines         two lines of 2-5 letter mixed-case words, four bold fonts, 64 px,
                random-lightness backgrounds, recipe `cpu-proof-lines`.  Bar: trigram CI above
                the shuffled-prompt CI within 60 minutes all told.
  cascade       the post's cascade (`textimg.learning.cascade`): a 32 px base on the centred
                strings, a 32 -> 64 px super-resolution model warm-started from it (recipe
                `cascade-sr`), and `textimg eval --sr --rerank` on the held-out prompts.  Bar:
                plain cascade exact at 64 px >= 0.9 x the base's at 32 px, rerank >= plain, the
                SR model alone on clean 32 px renderings >= 0.95 x the 64 px ceiling, <= 60 min.

    python benchmarks/learns_to_write.py --task short --out /tmp/ltw                   # ~27 min
    python benchmarks/learns_to_write.py --task short-center --threads 2 --out /tmp/ltw  # ~25 min
    python benchmarks/learns_to_write.py --task lines --out /tmp/ltw --curve 1000 2000  # ~60 min
    python benchmarks/learns_to_write.py --task cascade --threads 2 --out /tmp/ltw  # ~50 min
    python benchmarks/learns_to_write.py --quick --out /tmp/ltw-quick     # smoke test, ~2 min

Prints one table (mean [95% CI], and exact match as a ratio of the ceiling) and writes
`OUT/learns_to_write.json` with each task's `result.json` (wall time per stage, each logged with
the load average as it ends: the machine may be shared, so wall times are only comparable at
equal load), plus a contact sheet per task (`--sheet-dir`, default OUT). The measured results
are in docs/results.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from textimg.eval.heldout import score_table
from textimg.learning.cascade import CASCADE, Cascade, run_cascade, scores_by_size
from textimg.learning.chain import run_chain
from textimg.learning.task import SHORT_CENTERED, SHORT_STRINGS, TWO_LINES, Task

TASKS = {"short": SHORT_STRINGS, "short-center": SHORT_CENTERED, "lines": TWO_LINES}


def transcript_use(
    checkpoint: Path, corpus: Path, images: int = 64, timesteps=(200, 500, 800)
) -> dict[str, dict[str, float]]:
    """Does the model read its transcript? Its loss on the same noised training images with the
    real transcript, another image's (shuffled) and the null one. Equal losses mean the text is
    ignored, whatever the samples look like: a model that draws text-like strokes at chance can
    be told from one that reads its prompt but does not yet write it legibly."""
    import torch

    from textimg.checkpoint import load_checkpoint
    from textimg.data.reader import ShardStream, make_loader
    from textimg.model import CharTokenizer

    model, diffusion, config = load_checkpoint(checkpoint, device="cpu")
    data = dataclasses.replace(config.data, shards=(str(corpus),), weights=())
    size, channels = config.model.image_size, config.model.image_channels
    batch = next(iter(make_loader(ShardStream(data, size, channels, images, seed=0))))
    tokenizer = CharTokenizer(config.model.context_length)
    texts = list(batch["text"])
    real = tokenizer.encode_batch(texts, pad_to=3).tokens
    shuffled = tokenizer.encode_batch(texts[1:] + texts[:1], pad_to=real.shape[1]).tokens
    null = tokenizer.null_tokens(len(texts), real.shape[1])
    generator = torch.Generator().manual_seed(0)
    result = {}
    with torch.no_grad():
        for step in timesteps:
            t = torch.full((len(texts),), step)
            noise = torch.randn(batch["image"].shape, generator=generator)
            losses = {
                name: diffusion.training_losses(model, batch["image"], t, tokens, noise)["loss"]
                .mean()
                .item()
                for name, tokens in (("real", real), ("shuffled", shuffled), ("null", null))
            }
            result[f"t={step}"] = {k: round(v, 5) for k, v in losses.items()}
    return result


def quick(task: Task) -> Task:
    """Toy size: every stage runs, nothing is learned."""
    return dataclasses.replace(
        task,
        steps=20,
        train_images=300,
        heldout=12,
        sample_steps=5,
        overrides=("train.decay_steps=20", "train.warmup_steps=2", "train.checkpoint_every=10"),
    )


def quick_cascade(cascade: Cascade) -> Cascade:
    """Toy size of the cascade: both stages train a few steps, every one of the seven steps
    runs on a dozen prompts with two candidates each."""
    base = quick(cascade.base)
    return dataclasses.replace(
        cascade, base=base, sr_steps=base.steps, sr_train_images=base.train_images,
        sr_overrides=base.overrides, samples=2, sr_count=2, sr_sample_steps=3, sheet_prompts=4,
    )  # fmt: skip


def run_cascade_task(args: argparse.Namespace) -> None:
    """`--task cascade`: run it, print its table and bar, write OUT/cascade/result.json."""
    cascade = quick_cascade(CASCADE) if args.quick else CASCADE
    out = args.out / "cascade"
    print(f"== cascade: base {cascade.base.total_steps()} steps of {cascade.base.recipe}, "
          f"super-resolution {cascade.sr_task().total_steps()} steps of {cascade.sr_recipe}, "
          f"load {os.getloadavg()}")  # fmt: skip
    sheet = (args.sheet_dir or out) / "learns_to_write_cascade.png"
    result = run_cascade(cascade, out, threads=args.threads, sheet=sheet)
    print()
    print(score_table(scores_by_size(result["scores"])))
    for stage, seconds in result["seconds"].items():
        print(f"  {stage}: {seconds / 60:.1f} min")
    for name, check in result["bar"].items():
        print(f"bar, {name}: {check['check']}: {'passed' if check['passed'] else 'FAILED'}")
    print(f"wrote {out / 'result.json'} and {result['sheet']}")


def configured(
    task: Task,
    steps: int | None,
    guidance: list[float] | None,
    overrides: list[str],
    **fields: int | str | None,
) -> Task:
    """The task as the command line asks: `--steps` also moves the lr decay horizon (so a
    shorter run still anneals), `--guidance` replaces the scales, `--set` adds overrides, and
    each other keyword (`sample_steps`, `sampler`, `train_images`, `train_seed`) replaces the
    task's field of that name unless it is None."""
    task = dataclasses.replace(task, **{k: v for k, v in fields.items() if v is not None})
    extra = list(task.overrides) + overrides
    if steps:
        extra.append(f"train.decay_steps={steps}")
        task = dataclasses.replace(task, steps=steps)
    if guidance:
        task = dataclasses.replace(task, guidance=tuple(guidance))
    return dataclasses.replace(task, overrides=tuple(extra))


def bar(task: Task, result: dict[str, Any]) -> tuple[str, bool]:
    """The task's pass criterion, as a sentence and a verdict."""
    scores = result["scores"]
    ceiling = scores["clean renderings (ceiling)"]["exact"]["mean"]
    own = [v for k, v in scores.items() if k.startswith("own prompts")]
    chance = [v for k, v in scores.items() if k.startswith("shuffled prompts")]
    if task.texts == "short":
        best = max(s["exact"]["mean"] for s in own)
        passed = best >= 0.9 * ceiling
        return f"best exact {best:.3f} vs 0.9 x ceiling {0.9 * ceiling:.3f}", passed
    best = max(own, key=lambda s: s["trigram"]["mean"])
    top_chance = max(s["trigram"]["ci95"][1] for s in chance)
    low = best["trigram"]["ci95"][0]
    return f"best trigram CI low {low:.3f} vs chance CI high {top_chance:.3f}", low > top_chance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=[*TASKS, "cascade", "both"], default="both")
    parser.add_argument("--out", type=Path, default=Path("out/learns_to_write"))
    parser.add_argument("--quick", action="store_true", help="toy size, for a smoke test")
    parser.add_argument(
        "--steps", type=int, help="override the task's training steps (and its lr decay horizon)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="extra `textimg train --set` override, e.g. train.batch_size=64 (repeatable)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per stage (1 is fastest on a busy 2-core machine)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="skip synth and train; evaluate OUT/TASK/run/checkpoint.pt",
    )
    parser.add_argument(
        "--curve",
        type=int,
        nargs="*",
        default=(),
        help="steps at which to keep and score a checkpoint (learning curve)",
    )
    parser.add_argument(
        "--guidance",
        type=float,
        nargs="+",
        help="guidance scales to sample with (1 = none; the curve uses the last), e.g. 1 3 5",
    )
    parser.add_argument(
        "--sample-steps", type=int, help="sampling steps per evaluation image (default: the task's)"
    )
    parser.add_argument(
        "--train-images",
        type=int,
        help="images in the rendered training corpus (default: the task's, 30,000 for both)",
    )
    parser.add_argument(
        "--train-seed",
        type=int,
        help="seed of the weights, noise and data order only (same corpus and prompts); "
        "`--set train.seed=N` would be overridden by the task's seed",
    )
    parser.add_argument(
        "--sampler",
        choices=("ddim", "ancestral"),
        help="evaluation sampler (default: the task's; ancestral for task 1, ddim for task 2)",
    )
    parser.add_argument("--sheet-dir", type=Path, help="where the contact sheets go (e.g. docs)")
    parser.add_argument(
        "--transcript-use",
        nargs=2,
        type=Path,
        metavar=("CKPT", "CORPUS"),
        help="only print the real/shuffled/null-transcript losses of CKPT on CORPUS",
    )
    args = parser.parse_args()
    if args.transcript_use:
        print(json.dumps(transcript_use(*args.transcript_use), indent=1))
        return
    if args.task == "cascade":
        run_cascade_task(args)
        return

    names = list(TASKS) if args.task == "both" else [args.task]
    results: dict[str, tuple[Task, dict[str, Any]]] = {}
    started = time.perf_counter()
    for name in names:
        task = configured(
            quick(TASKS[name]) if args.quick else TASKS[name],
            args.steps,
            args.guidance,
            args.overrides,
            sample_steps=args.sample_steps,
            sampler=args.sampler,
            train_images=args.train_images,
            train_seed=args.train_seed,
        )
        sheet_dir = args.sheet_dir or args.out / name
        print(f"== task {name}: {task.total_steps()} steps of {task.recipe}, "
              f"load {os.getloadavg()}")  # fmt: skip
        result = run_chain(
            task,
            args.out / name,
            threads=args.threads,
            train=not args.reuse,
            sheet=sheet_dir / f"learns_to_write_{name}.png",
            curve=args.curve,
        )
        results[name] = task, result
    report = {
        "argv": sys.argv,
        "seconds": round(time.perf_counter() - started, 1),
        "load_average_end": os.getloadavg(),
        "tasks": {name: result for name, (_, result) in results.items()},
    }
    for task, result in results.values():
        sentence, passed = bar(task, result)
        result["bar"] = {"check": sentence, "passed": passed}
        corpus = Path(result["paths"]["corpus"])
        if corpus.exists():
            result["transcript_use"] = transcript_use(Path(result["paths"]["checkpoint"]), corpus)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learns_to_write.json").write_text(json.dumps(report, indent=2) + "\n")

    print()
    print(score_table({name: result["scores"] for name, (_, result) in results.items()}))
    for name, (_, result) in results.items():
        print(
            f"{name}: {result['steps']} steps, {result['parameters'] / 1e6:.2f}M params, "
            f"median {result['train_images_per_s']:.0f} img/s; "
            f"train {result['seconds'].get('train', 0) / 60:.1f} min, "
            f"all stages {result['total_seconds'] / 60:.1f} min; bar: {result['bar']}"
        )
        for t, losses in result.get("transcript_use", {}).items():
            print(f"  loss at {t}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
        for point in result["curve"]:
            print(
                f"  curve step {point['step']}: trigram {point['trigram']['mean']:.3f} "
                f"exact {point['exact']['mean']:.3f}"
            )
    print(f"wrote {args.out / 'learns_to_write.json'}")


if __name__ == "__main__":
    main()
