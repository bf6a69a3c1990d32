"""`textimg demo`: train a model that writes, from nothing, in minutes on a laptop's CPU.

The chain the project is about, at the smallest size where it finishes inside 10 minutes on 2 CPU
cores: render strings to a corpus (`textimg.data.synth`), train recipe `demo` on it
(`textimg.train`), sample prompts that were never rendered for training and read the samples
back with the default OCR engine (`textimg.eval`). The score sits beside its two references, the
post's habit of judging by OCR round trip (nostalgebraist 2022):

* chance: the same samples scored against a derangement of the prompts, so a model that writes
  plausible but wrong strings gets what it deserves;
* ceiling: clean renderings of the held-out prompts in the corpus's fonts, sizes and grays, scored
  the same way, since OCR misreads small text too.

What is rendered and how it is judged is `DemoSettings`; the network and its training are the
recipe. `benchmarks/learns_to_write.py` runs the larger tasks (36 characters, two lines of words).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from textimg.errors import TextimgError
from textimg.eval import heldout
from textimg.files import write_text_atomic


@dataclass(frozen=True)
class DemoSettings:
    """What the demo renders and how it judges the samples; the image side is the recipe's."""

    recipe: str = "demo"
    alphabet: str = "0123456789"
    fonts: tuple[str, ...] = ("DejaVuSans-Bold.ttf", "Roboto-Bold.ttf")
    min_font_px: int = 8
    max_font_px: int = 10  # three bold digits of 10 px fill a 24 px image; larger ones get cut
    min_contrast: int = 128
    train_images: int = 20_000
    heldout: int = 64
    short_repeat: int = 4  # 2-character strings repeated in the training list: ~1/4 of draws
    ceiling_renders: int = 2  # clean renderings per held-out prompt
    sampler: str = "ancestral"
    sample_steps: int = 25
    guidance: float = 5.0
    steps: int | None = None  # training steps; None = the recipe's (tests shrink it)
    overrides: tuple[str, ...] = ()  # extra `section.field=value` settings for the recipe


def _busy_cores(seconds: float = 0.5) -> float | None:
    """Cores busy over the next `seconds` by /proc/stat (Linux), None where it cannot be read."""

    def ticks() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # all, idle + iowait

    try:
        total, idle = ticks()
        time.sleep(seconds)
        total2, idle2 = ticks()
    except (OSError, ValueError, IndexError):
        return None
    if total2 <= total:
        return None
    return (os.cpu_count() or 1) * (1 - (idle2 - idle) / (total2 - total))


def free_cores() -> int:
    """Torch threads for this run: the cores that other processes leave idle, at least one.

    On a busy machine every thread beyond the free cores waits at each of oneDNN's barriers for
    a core someone else holds: with the 1-minute load at 8 on 2 cores, two threads trained the
    demo's network at 6.6 images/s and one thread at 19.6. Busy cores are sampled for half a
    second, since the load average lags: just after another run ends it still counts that run.
    """
    cores = os.cpu_count() or 1
    busy = _busy_cores()
    if busy is None:
        busy = os.getloadavg()[0]
    return max(1, cores - round(busy))


def render(texts: Sequence[str], settings: DemoSettings, size: int, n: int, seed: int,
           out: Path, text_file: Path) -> None:  # fmt: skip
    """Render `n` images of `texts` (drawn at random), centred, into shards under `out`."""
    from textimg.data.fonts import resolve_fonts
    from textimg.data.synth import (
        RenderContext,
        SynthConfig,
        font_fingerprint,
        run_synth,
        text_fingerprint,
    )

    font_list = heldout.write_text_file(settings.fonts, text_file.parent / "fonts.txt")
    fonts = tuple(resolve_fonts(font_list).valid)
    if not fonts:
        raise TextimgError(f"none of the demo's fonts is installed: {', '.join(settings.fonts)}")
    config = SynthConfig(
        n=n, seed=seed, size=size, max_lines=1, min_font_px=settings.min_font_px,
        max_font_px=settings.max_font_px, min_contrast=settings.min_contrast, placement="center",
        text_file=str(text_file), text_sha256=text_fingerprint(texts),
        fonts=font_fingerprint(fonts),
    )  # fmt: skip
    config.check()
    run_synth(RenderContext(config, fonts, tuple(texts)), out, workers=os.cpu_count() or 1)


def run_demo(
    out: Path,
    seed: int = 0,
    settings: DemoSettings = DemoSettings(),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Texts -> corpus -> training -> samples of the held-out prompts -> scores, all under `out`;
    returns what it writes to `out/result.json`. Torch runs on the free cores meanwhile; the
    caller's process keeps its own thread setting afterwards."""
    import torch

    out = Path(out)
    if (out / "run" / "checkpoint.pt").exists():
        raise TextimgError(f"{out} already holds a demo run; choose another --out")
    threads = free_cores()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_stages(out, seed, settings, log, threads)
    finally:
        torch.set_num_threads(previous_threads)


def _run_stages(
    out: Path, seed: int, settings: DemoSettings, log: Callable[[str], None], threads: int
) -> dict[str, Any]:
    """`run_demo`'s stages, timed, and the result it writes."""
    from textimg.checkpoint import read_checkpoint
    from textimg.config import apply_overrides, load_recipe
    from textimg.eval.evaluate import EvalSettings, SamplingSettings, evaluate_checkpoint
    from textimg.eval.ocr import OcrCache, OcrSettings, default_cache_path, make_engine
    from textimg.eval.scoring import parse_prompt_lines, score
    from textimg.train import train

    checkpoint = out / "run" / "checkpoint.pt"
    started = time.perf_counter()
    stages: dict[str, float] = {}

    def stage(name: str) -> None:
        stages[name] = round(time.perf_counter() - started - sum(stages.values()), 1)
        log(f"{name}: {stages[name]:.0f} s (load {os.getloadavg()[0]:.1f})")

    sets = [f'data.shards=["{out / "corpus"}"]', f"train.seed={seed}", 'train.device="cpu"']
    if settings.steps:
        sets += [f"train.steps={settings.steps}", f"train.decay_steps={settings.steps}"]
    config = apply_overrides(load_recipe(settings.recipe), [*sets, *settings.overrides])
    size = config.model.image_size

    texts = out / "texts"
    texts.mkdir(parents=True, exist_ok=True)
    train_texts, heldout_texts = heldout.split_strings(
        settings.alphabet, settings.heldout, seed, settings.short_repeat
    )
    keys = [f"p{i:03d}" for i in range(len(heldout_texts))]
    train_file = heldout.write_text_file(train_texts, texts / "train.txt")
    heldout_file = heldout.write_text_file(heldout_texts, texts / "heldout.txt")
    prompts = heldout.write_prompts_file(keys, heldout_texts, texts / "prompts.jsonl")
    # eval names the sample of prompt KEY `KEY_0.png`; score finds its prompt by that name
    shuffled = heldout.write_prompts_file(
        [f"{k}_0" for k in keys],
        heldout.derangement(heldout_texts, seed + 1),
        texts / "shuffled.jsonl",
    )
    log(f"{len(set(train_texts))} training strings, {len(heldout_texts)} held-out prompts")
    render(train_texts, settings, size, settings.train_images, seed, out / "corpus", train_file)
    stage("synth")
    train(config, out / "run")
    stage("train")

    engine = make_engine(OcrSettings(), OcrCache(default_cache_path()))
    sampling = SamplingSettings(
        samples=1,
        steps=settings.sample_steps,
        guidance=settings.guidance,
        seed=seed,
        sampler=settings.sampler,
    )
    lines = parse_prompt_lines(prompts)
    summary = evaluate_checkpoint(
        checkpoint, "samples", lines, out / "eval", engine, EvalSettings(sampling=sampling)
    )
    stage("sample and read")
    label = "no guidance" if settings.guidance == 1 else f"guidance {settings.guidance:g}"
    scores = {f"own prompts, {label}": heldout.score_entry(summary)}
    chance = score(out / "eval" / "samples", shuffled, out / "scores" / "shuffled", engine)
    scores[f"shuffled prompts, {label} (chance)"] = heldout.score_entry(chance)
    n_clean = settings.heldout * settings.ceiling_renders
    render(heldout_texts, settings, size, n_clean, seed + 1000, out / "clean", heldout_file)
    ceiling = score(out / "clean", None, out / "scores" / "clean", engine)
    scores["clean renderings (ceiling)"] = heldout.score_entry(ceiling)
    stage("chance and ceiling")
    sheet = heldout.write_sample_sheet(out / "eval" / "samples", out / "sheet.png")

    logged = (out / "run" / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in logged]
    speeds = sorted(row["images_per_s"] for row in metrics)
    parameters = sum(v.numel() for v in read_checkpoint(checkpoint)["ema"].values())
    paths = {"texts": texts, "corpus": out / "corpus", "run": out / "run",
             "checkpoint": checkpoint, "samples": out / "eval" / "samples",
             "clean_renderings": out / "clean", "scores": out / "scores", "sheet": sheet,
             "result": out / "result.json"}  # fmt: skip
    result = {
        "seed": seed,
        "settings": asdict(settings),
        "steps": metrics[-1]["step"],
        "parameters": parameters,
        "train_images_per_s": round(speeds[len(speeds) // 2], 1),
        "threads": threads,
        "ocr": summary["ocr"],
        "scores": scores,
        "seconds": stages,
        "total_seconds": round(time.perf_counter() - started, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sheet": str(sheet),
        "paths": {role: str(path) for role, path in paths.items()},
    }
    write_text_atomic(out / "result.json", json.dumps(result, indent=2) + "\n")
    log("\n".join([heldout.SCORE_HEADER, *heldout.score_rows("demo", scores)]))
    return result
