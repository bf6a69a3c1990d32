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

import itertools
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from textimg.errors import TextimgError
from textimg.files import write_text_atomic

REPORTED_METRICS = ("trigram", "exact")


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


def split_strings(
    alphabet: str, heldout: int, seed: int, short_repeat: int
) -> tuple[list[str], list[str]]:
    """(training texts, held-out prompts) over every 2- and 3-character string of `alphabet`.

    A quarter of the held-out prompts have 2 characters. The 2-character training strings are
    repeated `short_repeat` times, so they are not drowned by the len(alphabet) times more
    3-character ones. No held-out prompt is ever a training text.
    """
    rng = random.Random(seed)
    two = ["".join(p) for p in itertools.product(alphabet, repeat=2)]
    three = ["".join(p) for p in itertools.product(alphabet, repeat=3)]
    rng.shuffle(two)
    rng.shuffle(three)
    held_two = heldout // 4
    if held_two >= len(two) or heldout - held_two >= len(three):
        raise TextimgError(f"{heldout} held-out prompts leave too few strings of {alphabet!r}")
    prompts = two[:held_two] + three[: heldout - held_two]
    rng.shuffle(prompts)
    return two[held_two:] * short_repeat + three[heldout - held_two :], prompts


def derangement(items: Sequence[str], seed: int) -> list[str]:
    """The items shuffled so that no position keeps an equal item (the chance baseline)."""
    rng = random.Random(seed)
    for _ in range(1000):
        shuffled = list(items)
        rng.shuffle(shuffled)
        if all(a != b for a, b in zip(items, shuffled, strict=True)):
            return shuffled
    raise TextimgError("could not shuffle the prompts without fixed points")


def write_text_file(texts: Sequence[str], path: Path) -> Path:
    """One text a line, line breaks as a literal `\\n` (what `synth --text-file` reads)."""
    write_text_atomic(path, "".join(t.replace("\n", "\\n") + "\n" for t in texts))
    return path


def write_prompts_file(keys: Sequence[str], texts: Sequence[str], path: Path) -> Path:
    """A `{"key", "text"}` JSON line per prompt (what `eval` and `score --prompts` read)."""
    rows = (json.dumps({"key": k, "text": t}) for k, t in zip(keys, texts, strict=True))
    write_text_atomic(path, "".join(row + "\n" for row in rows))
    return path


def score_entry(summary: dict[str, Any]) -> dict[str, Any]:
    """The reported metrics of a scoring summary (mean and 95% CI each) and how many it scored."""
    entry = {m: summary[m] for m in REPORTED_METRICS if m in summary}
    entry["n"] = summary["counts"]["scored"]
    return entry


def score_rows(name: str, scores: dict[str, dict[str, Any]]) -> list[str]:
    """Table rows: each condition's metrics as mean [95% CI] and exact match over the ceiling."""
    ceiling = next((s for c, s in scores.items() if c.startswith("clean renderings")), {})
    ceiling_exact = ceiling.get("exact", {}).get("mean")
    rows = []
    for condition, entry in scores.items():
        cells = []
        for metric in REPORTED_METRICS:
            value = entry.get(metric) or {}
            if value.get("mean") is None:
                cells.append(f"{'-':>24s}")
                continue
            low, high = value["ci95"]
            cells.append(f"{value['mean']:.3f} [{low:.3f}, {high:.3f}]".rjust(24))
        exact = (entry.get("exact") or {}).get("mean")
        ratio = f"{exact / ceiling_exact:.2f}" if exact is not None and ceiling_exact else "-"
        rows.append(f"{name:12s} {condition:44s} {' '.join(cells)} {ratio:>10s}")
    return rows


SCORE_HEADER = f"{'task':12s} {'condition':44s} {'trigram':>24s} {'exact':>24s} {'exact/ceil':>10s}"


def write_sample_sheet(folder: Path, path: Path, limit: int = 32, cell: int = 64) -> Path:
    """A contact sheet of scored samples captioned `prompt` and `OCR: what it read`."""
    import pandas as pd
    from PIL import Image

    from textimg.images import contact_sheet

    # as text: a prompt like "039" is not the number 39
    rows = pd.read_csv(folder / "results.csv", dtype=str, keep_default_na=False)
    rows = rows[rows["image"] != ""].head(limit)  # a prompt without an image has nothing to show
    items = []
    for row in rows.itertuples():
        image = Image.open(folder / row.image).resize((cell, cell), Image.NEAREST)
        prompt = str(row.prompt).replace("\n", " / ")
        read = str(row.transcript).replace("\n", " / ")
        items.append((image, f"{prompt}\nOCR: {read}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(items, columns=8, cell=cell).save(path, optimize=True)
    return path


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

    font_list = write_text_file(settings.fonts, text_file.parent / "fonts.txt")
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
    returns what it writes to `out/result.json`."""
    import torch

    from textimg.checkpoint import read_checkpoint
    from textimg.config import apply_overrides, load_recipe
    from textimg.eval.evaluate import EvalSettings, SamplingSettings, evaluate_checkpoint
    from textimg.eval.ocr import OcrCache, OcrSettings, default_cache_path, make_engine
    from textimg.eval.scoring import parse_prompt_lines, score
    from textimg.train import train

    out = Path(out)
    checkpoint = out / "run" / "checkpoint.pt"
    if checkpoint.exists():
        raise TextimgError(f"{out} already holds a demo run; choose another --out")
    threads = free_cores()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
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
        train_texts, heldout = split_strings(
            settings.alphabet, settings.heldout, seed, settings.short_repeat
        )
        keys = [f"p{i:03d}" for i in range(len(heldout))]
        train_file = write_text_file(train_texts, texts / "train.txt")
        heldout_file = write_text_file(heldout, texts / "heldout.txt")
        prompts = write_prompts_file(keys, heldout, texts / "prompts.jsonl")
        # eval names the sample of prompt KEY `KEY_0.png`; score finds its prompt by that name
        shuffled = write_prompts_file(
            [f"{k}_0" for k in keys], derangement(heldout, seed + 1), texts / "shuffled.jsonl"
        )
        log(f"{len(set(train_texts))} training strings, {len(heldout)} held-out prompts")
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
        scores = {f"own prompts, {label}": score_entry(summary)}
        chance = score(out / "eval" / "samples", shuffled, out / "scores" / "shuffled", engine)
        scores[f"shuffled prompts, {label} (chance)"] = score_entry(chance)
        n_clean = settings.heldout * settings.ceiling_renders
        render(heldout, settings, size, n_clean, seed + 1000, out / "clean", heldout_file)
        ceiling = score(out / "clean", None, out / "scores" / "clean", engine)
        scores["clean renderings (ceiling)"] = score_entry(ceiling)
        stage("chance and ceiling")
        sheet = write_sample_sheet(out / "eval" / "samples", out / "sheet.png")

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
        log("\n".join([SCORE_HEADER, *score_rows("demo", scores)]))
        return result
    finally:
        torch.set_num_threads(previous_threads)  # the caller's process keeps its own setting
