"""The learn-to-write chain behind `learns_to_write.py`: texts -> `synth` -> `train` -> `eval`.

Render a corpus from training strings, train a recipe on it, sample prompts that were never
rendered for training, and read the samples back with OCR. Every number comes with the two
references that make it meaningful (the post's habit of judging by OCR round trip):

* chance: the same samples scored against shuffled prompts (a derangement);
* ceiling: clean renderings of the held-out prompts, made by `textimg synth` with the same fonts
  and sizes and scored the same way, since OCR itself misreads small text.

Each stage runs as the `textimg` command a user would type, in its own process (logged to
`OUT/logs/NAME.log` and recorded with its wall time in the result), so the chain exercises the
real CLI. A task names its recipe; what it trains with lives there, not here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textimg.config import load_recipe
from textimg.errors import TextimgError
from textimg.eval.heldout import (
    SCORE_HEADER,
    derangement,
    score_entry,
    score_rows,
    split_strings,
    write_prompts_file,
    write_sample_sheet,
    write_text_file,
)

ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

CEILING_RENDERS = 5
"""Clean renderings per held-out prompt for the ceiling. One each left the ceiling as noisy as the
score it divides (task 1: 0.710-0.770 over five render seeds); five cost ~1 minute on 2 cores and
pin it to about +-0.03."""


@dataclass(frozen=True)
class Task:
    """One learn-to-write task: what text, how it is rendered, which recipe trains on it."""

    name: str
    texts: str  # "short": 2-3 characters of A-Z 0-9; "lines": two lines of short mixed-case words
    size: int
    fonts: tuple[str, ...]  # font list entries (file names), written to a `--fonts` file
    recipe: str  # recipe name or TOML path: the network and every training setting
    train_images: int
    steps: int | None = None  # training steps; None = the recipe's `train.steps`
    heldout: int = 200
    min_font_px: int = 9
    max_font_px: int = 15
    max_lines: int = 1
    min_contrast: int = 128
    placement: str = "random"  # `textimg synth --placement`: random | center
    sample_steps: int = 25  # 25 and 50 DDIM steps read back equally (exact 0.180 both, task 1)
    sampler: str = "ddim"  # `textimg eval --sampler`: ddim | ancestral
    guidance: tuple[float, ...] = (1.0, 3.0)  # 1 = no guidance
    upscale: int = 4  # OCR enlargement: EasyOCR drops detections of 20 px or less
    overrides: tuple[str, ...] = ()  # extra `--set section.field=value` for `textimg train`
    seed: int = 0  # texts, corpus, ceiling and sampling; also the weights unless train_seed is set
    train_seed: int | None = None  # weights, noise and data order alone: a reseed of one corpus

    def total_steps(self) -> int:
        """The step training ends at: the task's own, else its recipe's."""
        return self.steps or load_recipe(self.recipe).train.steps


SHORT_STRINGS = Task(
    name="short",
    texts="short",
    size=32,
    fonts=("DejaVuSans-Bold.ttf", "Roboto-Bold.ttf"),
    recipe="cpu-proof-short",
    train_images=30_000,
    # 5 beats 3 once the model writes; ancestral sampling beat DDIM by 0.05-0.11 exact on
    # validation strings at three checkpoints (`--sampler ddim` shows it)
    guidance=(1.0, 5.0),
    sampler="ancestral",
)
"""2-3 character strings at 32 px anywhere in the image: a 1M-param U-Net on 2 CPU cores within
30 minutes all told; bar: exact >= 0.9 x the ceiling."""

SHORT_CENTERED = dataclasses.replace(
    SHORT_STRINGS, name="short-center", placement="center", recipe="cpu-proof-short-center"
)
"""The same texts, fonts, sizes and grays with every string in the middle of its image: no
position to learn."""

TWO_LINES = Task(
    name="lines",
    texts="lines",
    size=64,
    fonts=("DejaVuSans-Bold.ttf", "Roboto-Bold.ttf", "OpenSans-Bold.ttf", "Lato-Bold.ttf"),
    recipe="cpu-proof-lines",
    train_images=30_000,
    min_font_px=14,
    max_font_px=22,
    max_lines=2,
    upscale=2,
)
"""The post's first success in miniature: two lines of words at 64 px within 60 minutes all told;
bar: trigram CI above the shuffled-prompt CI."""


# ---- texts ------------------------------------------------------------------------------------


def _short_words() -> list[str]:
    from textimg.data.texts import english_vocabulary

    words, _ = english_vocabulary()
    return [w for w in words[:3000] if w.isalpha() and 2 <= len(w) <= 5]


def _cased(word: str, rng: random.Random) -> str:
    style = rng.randrange(3)
    return word if style == 0 else word.capitalize() if style == 1 else word.upper()


def split_texts(task: Task) -> tuple[list[str], list[str]]:
    """(training texts, held-out prompts); no held-out prompt is ever a training text.

    Short strings: every 2-3 character string over A-Z 0-9, the 2-character ones repeated 12
    times (`textimg.eval.heldout.split_strings`). Lines: "word\\nword" pairs of common 2-5
    letter words in lower, Title or UPPER case; the held-out pairs are drawn first and never
    reused, the words themselves are shared.
    """
    if task.texts == "short":
        return split_strings(ALPHANUMERIC, task.heldout, task.seed, short_repeat=12)
    if task.texts != "lines":
        raise TextimgError(f"unknown task texts {task.texts!r}; choose short or lines")
    rng = random.Random(task.seed)
    words = _short_words()

    def pair() -> str:
        return f"{_cased(rng.choice(words), rng)}\n{_cased(rng.choice(words), rng)}"

    heldout: list[str] = []
    while len(heldout) < task.heldout:
        text = pair()
        if text not in heldout:
            heldout.append(text)
    excluded = set(heldout)
    train: list[str] = []
    while len(train) < 50_000:
        text = pair()
        if text not in excluded:
            train.append(text)
    return train, heldout


def render_options(
    task: Task, font_list: Path, workers: int, font_dir: Path | None = None
) -> list[str]:
    """`textimg synth` options that draw a task's images (corpus and clean renderings alike);
    with `font_dir`, only the fonts in that folder (a machine without the pip font packages)."""
    options = [
        "--size", task.size, "--max-lines", task.max_lines,
        "--min-font-px", task.min_font_px, "--max-font-px", task.max_font_px,
        "--min-contrast", task.min_contrast, "--placement", task.placement,
        "--fonts", font_list, "--workers", max(1, workers),
    ]  # fmt: skip
    if font_dir is not None:
        options += ["--font-dir", font_dir, "--no-system-fonts"]
    return [str(option) for option in options]


# ---- running the CLI --------------------------------------------------------------------------


@dataclass
class Stage:
    """One `textimg` command of the chain and what it cost."""

    name: str
    command: list[str]
    seconds: float = 0.0
    load_before: float = 0.0  # 1-minute load average: on a shared machine wall times inflate


@dataclass
class ChainResult:
    """Everything a chain run wrote and measured; `to_dict` is the JSON report."""

    task: Task
    out: Path
    stages: list[Stage] = field(default_factory=list)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: int = 0
    train_images_per_s: float = 0.0
    parameters: int = 0
    sheet: Path | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)  # scores of kept checkpoints

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": dataclasses.asdict(self.task),
            "out": str(self.out),
            "steps": self.steps,
            "parameters": self.parameters,
            "train_images_per_s": round(self.train_images_per_s, 1),
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "scores": self.scores,
            "curve": self.curve,
            "sheet": str(self.sheet) if self.sheet else None,
        }


def _run_textimg(
    name: str, args: Sequence[Any], result: ChainResult, log: Callable[[str], None], threads: int
) -> None:
    """Run one `textimg` command in its own process, its output in `out/logs/NAME.log`."""
    command = ["textimg", *map(str, args)]
    stage = Stage(name, command, load_before=round(os.getloadavg()[0], 2))
    log(f"$ {shlex.join(command)}")
    started = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    completed = subprocess.run(
        [sys.executable, "-m", "textimg", *command[1:]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    logs = result.out / "logs"
    logs.mkdir(exist_ok=True)
    (logs / f"{name}.log").write_text(completed.stdout, encoding="utf-8")
    stage.seconds = round(time.perf_counter() - started, 1)
    result.stages.append(stage)
    if completed.returncode:
        tail = "\n".join(completed.stdout.splitlines()[-15:])
        raise TextimgError(f"`{shlex.join(command)}` failed ({completed.returncode}):\n{tail}")
    log(f"  {name}: {stage.seconds:.0f} s (load {stage.load_before})")


def summary_scores(summary_path: Path) -> dict[str, Any]:
    return score_entry(json.loads(summary_path.read_text()))


def _find_summary(folder: Path) -> Path:
    found = sorted(folder.glob("*/summary.json")) or sorted(folder.glob("summary.json"))
    if not found:
        raise TextimgError(f"no summary.json under {folder}")
    return found[0]


def run_chain(
    task: Task,
    out: Path,
    log: Callable[[str], None] = print,
    threads: int = 1,
    train: bool = True,
    sheet: Path | None = None,
    curve: Sequence[int] = (),
    curve_prompts: int = 100,
) -> ChainResult:
    """Texts, corpus, clean renderings, training, eval with and without guidance, chance and
    ceiling scores, and a contact sheet, all under `out`. `train=False` reuses `out/run`.

    `curve` lists steps at which to keep a checkpoint; each is scored with the task's last
    guidance on the first `curve_prompts` held-out prompts (`result.curve`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = ChainResult(task=task, out=out)
    texts = out / "texts"
    texts.mkdir(exist_ok=True)
    train_texts, heldout = split_texts(task)
    keys = [f"p{i:04d}" for i in range(len(heldout))]
    train_file = write_text_file(train_texts, texts / "train.txt")
    heldout_file = write_text_file(heldout, texts / "heldout.txt")
    prompts = write_prompts_file(keys, heldout, texts / "prompts.jsonl")
    # eval names the k-th sample of prompt KEY `KEY_k.png`; score reads prompts by that name.
    shuffled = write_prompts_file(
        [f"{k}_0" for k in keys], derangement(heldout, task.seed + 1), texts / "shuffled.jsonl"
    )
    font_list = write_text_file(task.fonts, texts / "fonts.txt")
    render = [*render_options(task, font_list, threads), "--shard-size", "1000"]
    ocr = ["--upscale", task.upscale]
    # one sample per prompt, drawn the same way for every evaluation (guidance and curve)
    sampling = ["--samples", 1, "--steps", task.sample_steps, "--sampler", task.sampler,
                "--seed", task.seed]  # fmt: skip

    def run(name: str, *args: Any) -> None:
        _run_textimg(name, args, result, log, threads)

    run_dir = out / "run"
    checkpoint = run_dir / "checkpoint.pt"
    if train:
        run("synth", "synth", "--out", out / "corpus", "--n", task.train_images,
            "--seed", task.seed, "--text-file", train_file, *render)  # fmt: skip
        sets = [x for o in task.overrides for x in ("--set", o)]
        train_seed = task.seed if task.train_seed is None else task.train_seed
        # Training in segments that `--resume` continues exactly, keeping each segment's
        # checkpoint, gives the learning curve without touching the trainer.
        total = task.total_steps()
        ends = sorted({s for s in curve if 0 < s < total} | {total})
        for index, end in enumerate(ends):
            resume = ["--resume"] if index else []
            run(f"train_{end}", "train", task.recipe, "--data", out / "corpus",
                "--out", run_dir, "--steps", end, "--seed", train_seed, "--device", "cpu",
                *resume, *sets)  # fmt: skip
            if end != total:
                shutil.copy2(checkpoint, run_dir / f"checkpoint-{end:06d}.pt")
    _read_train_metrics(result, run_dir)

    # The ceiling: the held-out prompts drawn by synth itself, scored against their own text,
    # CEILING_RENDERS times as many renderings as prompts (fonts, sizes and grays drawn anew).
    run("synth_clean", "synth", "--out", out / "clean", "--n", task.heldout * CEILING_RENDERS,
        "--seed", task.seed + 1000, "--text-file", heldout_file, *render)  # fmt: skip
    run("score_clean", "score", out / "clean", "--out", out / "scores" / "clean", *ocr)
    result.scores["clean renderings (ceiling)"] = summary_scores(
        out / "scores" / "clean" / "summary.json"
    )

    sheet_folder = None
    for guidance in task.guidance:
        label = "no guidance" if guidance == 1 else f"guidance {guidance:g}"
        folder = out / "eval" / f"guidance-{guidance:g}"
        run(f"eval_g{guidance:g}", "eval", checkpoint, "--prompts", prompts, "--out", folder,
            "--guidance", guidance, *sampling, *ocr)  # fmt: skip
        summary = _find_summary(folder)
        result.scores[f"own prompts, {label}"] = summary_scores(summary)
        scored = out / "scores" / f"shuffled-g{guidance:g}"
        run(f"score_shuffled_g{guidance:g}", "score", summary.parent, "--prompts", shuffled,
            "--out", scored, *ocr)  # fmt: skip
        result.scores[f"shuffled prompts, {label} (chance)"] = summary_scores(
            scored / "summary.json"
        )
        sheet_folder = summary.parent
    for kept in sorted(run_dir.glob("checkpoint-*.pt")):
        step = int(kept.stem.split("-")[1])
        folder = out / "eval" / "curve" / kept.stem
        run(f"eval_{kept.stem}", "eval", kept, "--prompts", prompts, "--out", folder,
            "--guidance", task.guidance[-1], "--limit", curve_prompts, *sampling,
            *ocr)  # fmt: skip
        result.curve.append({"step": step, **summary_scores(_find_summary(folder))})
    if sheet_folder is not None:
        result.sheet = write_sample_sheet(sheet_folder, sheet or out / "sheet.png")
    (out / "result.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def _read_train_metrics(result: ChainResult, run_dir: Path) -> None:
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        return
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if rows:
        result.steps = rows[-1]["step"]
        speeds = sorted(r["images_per_s"] for r in rows)
        result.train_images_per_s = speeds[len(speeds) // 2]
    checkpoint = run_dir / "checkpoint.pt"
    if checkpoint.exists():
        from textimg.checkpoint import read_checkpoint

        result.parameters = sum(v.numel() for v in read_checkpoint(checkpoint)["ema"].values())


def format_table(results: Sequence[ChainResult]) -> str:
    """Plain-text table: every score row of every task, mean [95% CI], and the ceiling ratio."""
    rows = [row for result in results for row in score_rows(result.task.name, result.scores)]
    return "\n".join([SCORE_HEADER, *rows])
