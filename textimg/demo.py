"""The whole chain once, end to end: texts -> `synth` -> `train` -> `eval` -> scores and a sheet.

This is the proof that a textimg model learns to write (issue 7): render a corpus from training
strings, train on it, sample prompts that were never rendered for training, and read the samples
back with OCR. Every number comes with the two references that make it meaningful (the post's
habit of judging by OCR round trip, nostalgebraist 2022):

* **chance**: the same samples scored against shuffled prompts (a derangement), so a model that
  writes plausible but wrong text scores what it deserves;
* **ceiling**: clean renderings of the held-out prompts, made by `textimg synth` with the same
  fonts and sizes and scored the same way, since OCR itself misreads small text.

Each stage runs as the `textimg` command a user would type (recorded in the result), so the demo
and `benchmarks/learns_to_write.py` exercise the real CLI. `run_chain` is shared by both;
`run_demo` is the small embedded default behind `textimg demo`.
"""

from __future__ import annotations

import dataclasses
import itertools
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

from textimg.errors import TextimgError

ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
REPORTED_METRICS = ("trigram", "exact")


# Clean renderings per held-out prompt for the ceiling. One each left the ceiling as noisy as the
# score it divides (task 1: 0.765 with one render seed, 0.710-0.770 over five, session 15); five
# cost ~1 minute on 2 cores and pin it to about +-0.03.
CEILING_RENDERS = 5


@dataclass(frozen=True)
class Task:
    """One learn-to-write task: what text, how it is rendered, which recipe trains on it."""

    name: str
    texts: str  # "short": 2-3 characters of A-Z 0-9; "lines": two lines of short mixed-case words
    size: int
    fonts: tuple[str, ...]  # font list entries (file names), written to a `--fonts` file
    recipe: str  # recipe name or TOML path
    steps: int
    train_images: int
    heldout: int = 200
    min_font_px: int = 9
    max_font_px: int = 15
    max_lines: int = 1
    min_contrast: int = 128
    placement: str = "random"  # `textimg synth --placement`: random | center
    sample_steps: int = 25  # reads back as well as 50 (session 9: exact 0.180 both)
    sampler: str = "ddim"  # `textimg eval --sampler`: ddim | ancestral
    guidance: tuple[float, ...] = (1.0, 3.0)  # 1 = no guidance
    upscale: int = 4  # OCR enlargement: EasyOCR drops detections of 20 px or less
    overrides: tuple[str, ...] = ()  # extra `--set section.field=value` for `textimg train`
    seed: int = 0  # texts, corpus, ceiling and sampling; also the weights unless train_seed is set
    train_seed: int | None = None  # weights, noise and data order alone: a reseed of one corpus


SHORT_STRINGS = Task(
    name="short",
    texts="short",
    size=32,
    fonts=("DejaVuSans-Bold.ttf", "Roboto-Bold.ttf"),
    recipe="cpu-proof-short",
    steps=4800,
    train_images=30_000,
    guidance=(1.0, 5.0),  # 5 beats 3 once the model writes (sessions 7-9)
    # ancestral beat DDIM by 0.05-0.11 exact on validation strings, three checkpoints (session 12)
    sampler="ancestral",
    overrides=("train.max_minutes=26",),  # the 30 minutes all told, on any machine
)
"""Task 1 of issue 7: the reference point of a plain 1.7M-param U-Net on 2 CPU cores."""

_CENTERED_STEPS = 8200
"""What the 26 minutes buy with self-conditioning's drafts at 88 img/s; the lr decays over them.
A slower machine stops at the time cap instead, where the cosine is already near its floor
(at step 7,100 of 8,200, 4.5% of its way from peak to floor lr is left)."""

SHORT_CENTERED = dataclasses.replace(
    SHORT_STRINGS,
    name="short-center",
    placement="center",
    # The settings of the best random-placement chain (session 13).
    steps=_CENTERED_STEPS,
    overrides=(
        *SHORT_STRINGS.overrides,
        f"train.decay_steps={_CENTERED_STEPS}",
        "model.pooled_text=true",
        "model.self_condition=true",
    ),
)
"""Task 1 with every string in the middle of its image: the same texts, fonts, sizes and grays,
no position to learn. The issue's reference does not say where its strings sat."""

TWO_LINES = Task(
    name="lines",
    texts="lines",
    size=64,
    fonts=("DejaVuSans-Bold.ttf", "Roboto-Bold.ttf", "OpenSans-Bold.ttf", "Lato-Bold.ttf"),
    recipe="cpu-proof-lines",
    steps=3000,
    train_images=30_000,
    min_font_px=14,
    max_font_px=22,
    max_lines=2,
    upscale=2,
    overrides=("train.max_minutes=47",),  # the 60 minutes all told, evaluations included
)
"""Task 2 of issue 7: the post's first success in miniature, two lines of words at 64 px."""

DEMO = dataclasses.replace(
    SHORT_STRINGS,
    name="demo",
    steps=800,
    train_images=8_000,
    heldout=48,
    # 2x2 pixel patches (1.4x the images/s of the unpatched recipe on a CPU) and batch 32 (the
    # recipe's 16 writes sooner per image but runs ~20% fewer images/s): at 800 steps nothing
    # writes yet, so the demo takes the faster settings.
    overrides=(
        "model.patch_size=2",
        "model.model_channels=32",
        "model.channel_mult=[1,2,2]",
        "train.batch_size=32",
    ),
)
"""`textimg demo`: task 1 cut to minutes on a laptop CPU. It shows every stage working, not
legible samples: at this budget the current model does not write yet (docs/learns_to_write.md)."""


# ---- texts ------------------------------------------------------------------------------------


def short_strings() -> list[str]:
    """Every 2- and 3-character string over A-Z 0-9 (1,296 + 46,656)."""
    return ["".join(p) for n in (2, 3) for p in itertools.product(ALPHANUMERIC, repeat=n)]


def _short_words() -> list[str]:
    from textimg.data.texts import english_vocabulary

    words, _ = english_vocabulary()
    return [w for w in words[:3000] if w.isalpha() and 2 <= len(w) <= 5]


def _cased(word: str, rng: random.Random) -> str:
    style = rng.randrange(3)
    return word if style == 0 else word.capitalize() if style == 1 else word.upper()


def split_texts(task: Task) -> tuple[list[str], list[str]]:
    """(training texts, held-out prompts); no held-out prompt is ever a training text.

    Short strings: a quarter of the held-out prompts have 2 characters, and 2-character strings
    are repeated in the training list so they are not drowned by the 36x more 3-character ones.
    Lines: "word\\nword" pairs of common 2-5 letter words in lower, Title or UPPER case; the
    held-out pairs are drawn first and never reused, the words themselves are shared.
    """
    rng = random.Random(task.seed)
    if task.texts == "short":
        two = [s for s in short_strings() if len(s) == 2]
        three = [s for s in short_strings() if len(s) == 3]
        rng.shuffle(two)
        rng.shuffle(three)
        held_two = task.heldout // 4
        heldout = two[:held_two] + three[: task.heldout - held_two]
        rng.shuffle(heldout)
        return two[held_two:] * 12 + three[task.heldout - held_two :], heldout
    if task.texts == "lines":
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
    raise TextimgError(f"unknown task texts {task.texts!r}; choose short or lines")


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
    path.write_text("".join(t.replace("\n", "\\n") + "\n" for t in texts), encoding="utf-8")
    return path


def write_prompts_file(keys: Sequence[str], texts: Sequence[str], path: Path) -> Path:
    rows = (json.dumps({"key": k, "text": t}) for k, t in zip(keys, texts, strict=True))
    path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    return path


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
            "paths": {name: str(path) for name, path in self.paths().items()},
        }

    def paths(self) -> dict[str, Path]:
        """Every file or folder the chain wrote, by role."""
        candidates = {
            "texts": self.out / "texts",
            "corpus": self.out / "corpus",
            "clean_renderings": self.out / "clean",
            "run": self.out / "run",
            "checkpoint": self.out / "run" / "checkpoint.pt",
            "eval": self.out / "eval",
            "scores": self.out / "scores",
            "sheet": self.sheet or self.out / "sheet.png",
            "result": self.out / "result.json",
        }
        return {name: path for name, path in candidates.items() if path.exists()}


def _run_textimg(
    name: str,
    args: Sequence[str],
    result: ChainResult,
    log: Callable[[str], None],
    threads: int,
    in_process: bool,
) -> None:
    """Run one `textimg` command, as a subprocess (isolated, logged to `out/logs/NAME.log`) or
    in this process (no interpreter, torch and EasyOCR start-up per stage: the demo and tests)."""
    command = ["textimg", *map(str, args)]
    stage = Stage(name, command, load_before=round(os.getloadavg()[0], 2))
    log(f"$ {shlex.join(command)}")
    started = time.perf_counter()
    if in_process:
        import torch

        from textimg.cli import app

        torch.set_num_threads(threads)
        code = app(command[1:], prog_name="textimg", standalone_mode=False)
        output = ""
    else:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        completed = subprocess.run(
            [sys.executable, "-m", "textimg", *command[1:]],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        code, output = completed.returncode, completed.stdout
        logs = result.out / "logs"
        logs.mkdir(exist_ok=True)
        (logs / f"{name}.log").write_text(output, encoding="utf-8")
    stage.seconds = round(time.perf_counter() - started, 1)
    result.stages.append(stage)
    if code:
        tail = "\n".join(output.splitlines()[-15:])
        raise TextimgError(f"`{shlex.join(command)}` failed ({code}):\n{tail}")
    log(f"  {name}: {stage.seconds:.0f} s (load {stage.load_before})")


def summary_scores(summary_path: Path) -> dict[str, Any]:
    summary = json.loads(summary_path.read_text())
    scores = {m: summary[m] for m in REPORTED_METRICS if m in summary}
    scores["n"] = summary.get("counts", {}).get("scored", summary.get("counts", {}).get("ok"))
    return scores


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
    in_process: bool = False,
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
    (texts / "fonts.txt").write_text("".join(f + "\n" for f in task.fonts), encoding="utf-8")
    render = [*render_options(task, texts / "fonts.txt", threads), "--shard-size", "1000"]
    ocr = ["--upscale", task.upscale]
    # one sample per prompt, drawn the same way for every evaluation (guidance and curve)
    sampling = ["--samples", 1, "--steps", task.sample_steps, "--sampler", task.sampler,
                "--seed", task.seed]  # fmt: skip

    def run(name: str, *args: Any) -> None:
        _run_textimg(name, args, result, log, threads, in_process)

    run_dir = out / "run"
    checkpoint = run_dir / "checkpoint.pt"
    if train:
        run("synth", "synth", "--out", out / "corpus", "--n", task.train_images,
            "--seed", task.seed, "--text-file", train_file, *render)  # fmt: skip
        sets = [x for o in task.overrides for x in ("--set", o)]
        train_seed = task.seed if task.train_seed is None else task.train_seed
        # Training in segments that `--resume` continues exactly, keeping each segment's
        # checkpoint, gives the learning curve without touching the trainer.
        ends = sorted({s for s in curve if 0 < s < task.steps} | {task.steps})
        for index, end in enumerate(ends):
            resume = ["--resume"] if index else []
            run(f"train_{end}", "train", task.recipe, "--data", out / "corpus",
                "--out", run_dir, "--steps", end, "--seed", train_seed, "--device", "cpu",
                *resume, *sets)  # fmt: skip
            if end != task.steps:
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


def write_sample_sheet(folder: Path, path: Path, limit: int = 32, cell: int = 64) -> Path:
    """A contact sheet of eval samples captioned `prompt -> what OCR read` (first `limit`)."""
    import pandas as pd
    from PIL import Image

    from textimg.images import contact_sheet

    rows = pd.read_csv(folder / "results.csv", keep_default_na=False)
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


def format_table(results: Sequence[ChainResult]) -> str:
    """Plain-text table: every score row of every task, mean [95% CI], and the ceiling ratio."""
    lines = [f"{'task':6s} {'condition':44s} {'trigram':>24s} {'exact':>24s} {'exact/ceil':>10s}"]
    for result in results:
        ceiling = result.scores.get("clean renderings (ceiling)", {}).get("exact", {})
        for condition, scores in result.scores.items():
            cells = []
            for metric in REPORTED_METRICS:
                value = scores.get(metric)
                if value is None:
                    cells.append(f"{'-':>24s}")
                    continue
                low, high = value["ci95"]
                cells.append(f"{value['mean']:.3f} [{low:.3f}, {high:.3f}]".rjust(24))
            exact = scores.get("exact", {}).get("mean")
            ratio = exact / ceiling["mean"] if exact is not None and ceiling.get("mean") else None
            ratio_text = f"{ratio:.2f}" if ratio is not None else "-"
            row = f"{result.task.name:6s} {condition:44s} {' '.join(cells)} {ratio_text:>10s}"
            lines.append(row)
    return "\n".join(lines)


# ---- textimg demo -----------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What `textimg demo` shows at the end: the sheet, the scores, and every path it wrote."""

    sheet: Path
    table: str
    paths: dict[str, Path]
    chain: ChainResult


def run_demo(
    out: Path,
    steps: int | None = None,
    train_images: int | None = None,
    heldout: int | None = None,
    guidance: tuple[float, ...] | None = None,
    threads: int | None = None,
    in_process: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """synth -> train -> eval on the embedded default (task 1 at demo size), in minutes on a CPU.

    The defaults train 800 steps of batch 32 on 8,000 rendered strings and judge 48 held-out
    prompts with and without guidance; smaller numbers make a smoke test (tests/test_demo.py runs
    10 steps, which draw noise: the scores are then only checked to be numbers in range).
    """
    steps = steps or DEMO.steps
    task = dataclasses.replace(
        DEMO,
        steps=steps,
        train_images=train_images or DEMO.train_images,
        heldout=heldout or DEMO.heldout,
        guidance=guidance or DEMO.guidance,
        # The recipe's learning rate decays over its own steps; the demo's decays in its run.
        overrides=(*DEMO.overrides, f"train.decay_steps={steps}"),
    )
    if task.steps < 100:  # a smoke test: keep warm-up inside the run, sample briefly
        task = dataclasses.replace(
            task,
            overrides=(
                *task.overrides,
                "train.warmup_steps=1",
                f"train.checkpoint_every={task.steps}",
                "train.log_every=1",
            ),  # fmt: skip
            sample_steps=min(task.sample_steps, 5),
        )
    threads = threads or max(1, min(8, os.cpu_count() or 1))
    chain = run_chain(task, Path(out), log=log, threads=threads, in_process=in_process)
    table = format_table([chain])
    return DemoResult(sheet=chain.sheet or Path(out) / "sheet.png", table=table,
                      paths=chain.paths(), chain=chain)  # fmt: skip
