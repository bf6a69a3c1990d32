"""The learn-to-write chain: texts -> corpus -> training -> samples of held-out prompts -> scores.

Render a corpus from a task's training strings (`textimg.data.synth`), train its recipe on it
(`textimg.train`), sample prompts that were never rendered for training and read the samples back
with OCR (`textimg.eval`). Every score sits beside the two references that make it meaningful,
the post's habit of judging by OCR round trip (nostalgebraist 2022):

* chance: the same samples scored against a derangement of the prompts, so a model that writes
  plausible but wrong strings gets what it deserves;
* ceiling: clean renderings of the held-out prompts in the corpus's fonts, sizes and grays, scored
  the same way, since OCR misreads small text too.

Every stage is a library call in this process, with torch on the threads the caller gives; the
caller's own thread setting is restored afterwards. What is rendered and judged is the `Task`; the
network and its training are its recipe.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textimg.errors import TextimgError
from textimg.eval import heldout
from textimg.files import write_text_atomic
from textimg.learning.task import Task, TaskTexts, write_texts

if TYPE_CHECKING:
    from textimg.config import RunConfig
    from textimg.train import TrainReport

Log = Callable[[str], None]
ReportFactory = Callable[["RunConfig", Path], AbstractContextManager["TrainReport | None"]]
"""Makes the trainer's report for one training call (the CLI's progress bar)."""


@dataclass(frozen=True)
class TrainingLog:
    """What a run's `metrics.jsonl` says of its training: where it ended and how fast it went."""

    steps: int
    loss: float
    images_per_s: float  # the median over logged intervals: robust to a stalled one


def read_training_log(run_dir: Path) -> TrainingLog | None:
    """The one reader of `RUN/metrics.jsonl`; None where the run has logged nothing."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return None
    speeds = sorted(row["images_per_s"] for row in rows)
    return TrainingLog(rows[-1]["step"], rows[-1]["loss"], speeds[len(speeds) // 2])


def render(
    task: Task,
    texts: Sequence[str],
    text_file: Path,
    fonts_file: Path,
    n: int,
    seed: int,
    out: Path,
) -> None:
    """Render `n` images of `texts` (drawn at random, placed and sized as the task says) into
    shards under `out`: the corpus `textimg synth --text-file TEXT_FILE --fonts FONTS_FILE`
    renders, rendered here."""
    from textimg.data.fonts import resolve_fonts
    from textimg.data.synth import (
        RenderContext,
        SynthConfig,
        font_fingerprint,
        run_synth,
        text_fingerprint,
    )

    fonts = tuple(resolve_fonts(fonts_file).valid)
    if not fonts:
        raise TextimgError(f"none of the task's fonts is installed: {', '.join(task.fonts)}")
    config = SynthConfig(
        n=n, seed=seed, size=task.image_size(), max_lines=task.max_lines,
        min_font_px=task.min_font_px, max_font_px=task.max_font_px,
        min_contrast=task.min_contrast, placement=task.placement, text_file=str(text_file),
        text_sha256=text_fingerprint(texts), fonts=font_fingerprint(fonts),
    )  # fmt: skip
    config.check()
    run_synth(RenderContext(config, fonts, tuple(texts)), out, workers=os.cpu_count() or 1)


def _checkpoint_step(run_dir: Path) -> int:
    """The step of the checkpoint in `run_dir`, 0 when there is none yet."""
    from textimg.checkpoint import CHECKPOINT_NAME, read_checkpoint

    path = run_dir / CHECKPOINT_NAME
    return int(read_checkpoint(path, mmap=True)["step"]) if path.exists() else 0


def train_segments(
    task: Task,
    corpus: Path,
    run_dir: Path,
    curve: Sequence[int] = (),
    report: ReportFactory | None = None,
    init_from: Path | None = None,
) -> None:
    """Train the task's recipe on `corpus` into `run_dir` on the CPU. With `curve`, in segments
    that resume exactly, each segment's checkpoint kept as `checkpoint-STEP.pt`: the learning
    curve without touching the trainer. The task's steps, seed and corpus win over its overrides,
    as `textimg train --steps --seed --data` win over `--set`. A run stopped part way (Ctrl-C)
    continues from its checkpoint; segments it already passed are not trained again. `report`
    makes the trainer's report for each segment (a progress bar); None trains quietly.
    `init_from` starts a fresh run from a checkpoint as `textimg train --init-from` does (a
    super-resolution recipe from a base: the warm start)."""
    from textimg.config import apply_overrides, load_recipe
    from textimg.train import train

    seed = task.seed if task.train_seed is None else task.train_seed
    horizon = [f"train.decay_steps={task.steps}"] if task.steps else []
    total = task.total_steps()
    ends = sorted({s for s in curve if 0 < s < total} | {total})
    for end in ends:
        done = _checkpoint_step(run_dir)
        if done >= end:
            continue
        sets = [*horizon, *task.overrides, f'data.shards=["{corpus}"]', f"train.steps={end}",
                f"train.seed={seed}", 'train.device="cpu"']  # fmt: skip
        config = apply_overrides(load_recipe(task.recipe), sets)
        with report(config, run_dir) if report else nullcontext(None) as segment_report:
            train(config, run_dir, resume=done > 0, init_from=init_from, report=segment_report)
        if end != total:
            shutil.copy2(run_dir / "checkpoint.pt", run_dir / f"checkpoint-{end:06d}.pt")


def _sample(task: Task, texts: TaskTexts, checkpoint: Path, folder: Path, engine: Any,
            guidance: float, limit: int | None = None) -> dict[str, Any]:  # fmt: skip
    """One sample of each held-out prompt (the first `limit`), drawn as the task says and read
    back into `folder`: the same noise for every guidance scale and checkpoint."""
    from textimg.eval.evaluate import EvalSettings, SamplingSettings, evaluate_checkpoint
    from textimg.eval.scoring import parse_prompt_lines

    sampling = SamplingSettings(samples=1, steps=task.sample_steps, guidance=guidance,
                                seed=task.seed, sampler=task.sampler)  # fmt: skip
    lines = parse_prompt_lines(texts.prompts_file)
    settings = EvalSettings(sampling=sampling, limit=limit)
    summary = evaluate_checkpoint(checkpoint, folder.name, lines, folder.parent, engine, settings)
    assert summary is not None  # one process: it is rank 0
    return summary


def _samples_folder(task: Task, out: Path, guidance: float) -> Path:
    """The headline samples (the task's last guidance: the sheet's and the curve's) are
    `eval/samples`; those of each other guidance scale G sit beside them as `samples-gG`."""
    return out / "eval" / ("samples" if guidance == task.guidance[-1] else f"samples-g{guidance:g}")


class _Clock:
    """Wall seconds per stage, each logged with the load average as it ends: on a shared machine
    wall times are only comparable at equal load."""

    def __init__(self, log: Log) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.log = log

    def stage(self, name: str) -> None:
        elapsed = time.perf_counter() - self.started - sum(self.seconds.values())
        self.seconds[name] = round(elapsed, 1)
        self.log(f"{name}: {self.seconds[name]:.0f} s (load {os.getloadavg()[0]:.1f})")

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 1)


def run_chain(
    task: Task,
    out: Path,
    log: Log = print,
    threads: int = 1,
    train: bool = True,
    sheet: Path | None = None,
    curve: Sequence[int] = (),
    curve_prompts: int = 100,
    report: ReportFactory | None = None,
) -> dict[str, Any]:
    """Texts, corpus, training, samples of the held-out prompts at each guidance scale, chance and
    ceiling scores and a contact sheet (`sheet`, default `out/sheet.png`), all under `out`;
    returns what it writes to `out/result.json`. `train=False` reuses `out/run`.

    `curve` lists steps at which to keep a checkpoint; each is scored with the task's last
    guidance on the first `curve_prompts` held-out prompts (`result["curve"]`). Torch runs on
    `threads` meanwhile; the caller's process keeps its own thread setting afterwards.

    A chain stopped part way (Ctrl-C) continues where it stopped when run again on the same
    `out`: the corpus and the training resume, finished samples are reused. A finished chain
    (`out/result.json`) is refused, so its results are never replaced."""
    import torch

    out = Path(out)
    if (out / "result.json").exists():
        raise TextimgError(
            f"{out} holds a finished run ({out / 'result.json'}); choose another --out"
        )
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_stages(task, out, log, threads, train, sheet or out / "sheet.png", curve,
                           curve_prompts, report)  # fmt: skip
    finally:
        torch.set_num_threads(previous_threads)


def _run_stages(task: Task, out: Path, log: Log, threads: int, train: bool, sheet: Path,
                curve: Sequence[int], curve_prompts: int,
                report: ReportFactory | None) -> dict[str, Any]:  # fmt: skip
    """`run_chain`'s stages, timed, and the result it writes."""
    from textimg.eval.ocr import OcrSettings, default_cache_path, make_engine, open_cache
    from textimg.eval.scoring import score

    clock = _Clock(log)
    texts = write_texts(task, out / "texts")
    log(f"{len(set(texts.train))} training strings, {len(texts.prompts)} held-out prompts")
    run_dir = out / "run"
    if train:
        render(task, texts.train, texts.train_file, texts.fonts_file, task.train_images,
               task.seed, out / "corpus")  # fmt: skip
        clock.stage("synth")
        train_segments(task, out / "corpus", run_dir, curve, report)
        clock.stage("train")

    engine = make_engine(OcrSettings(upscale=task.upscale), open_cache(default_cache_path()))
    checkpoint = run_dir / "checkpoint.pt"
    folders = {g: _samples_folder(task, out, g) for g in task.guidance}
    summaries = {g: _sample(task, texts, checkpoint, f, engine, g) for g, f in folders.items()}
    clock.stage("sample and read")
    scores = {}
    for guidance, folder in folders.items():
        label = "no guidance" if guidance == 1 else f"guidance {guidance:g}"
        scores[f"own prompts, {label}"] = heldout.score_entry(summaries[guidance])
        # the scores folder is named as the samples folder is: shuffled, shuffled-gG
        shuffled = out / "scores" / folder.name.replace("samples", "shuffled")
        chance = score(folder, texts.shuffled_file, shuffled, engine)
        scores[f"shuffled prompts, {label} (chance)"] = heldout.score_entry(chance)
    render(task, texts.prompts, texts.heldout_file, texts.fonts_file,
           task.heldout * task.ceiling_renders, task.seed + 1000, out / "clean")  # fmt: skip
    ceiling = score(out / "clean", None, out / "scores" / "clean", engine)
    scores["clean renderings (ceiling)"] = heldout.score_entry(ceiling)
    clock.stage("chance and ceiling")
    points = []
    for kept in sorted(run_dir.glob("checkpoint-*.pt")):
        folder = out / "eval" / "curve" / kept.stem
        summary = _sample(task, texts, kept, folder, engine, task.guidance[-1], curve_prompts)
        points.append({"step": int(kept.stem.split("-")[1]), **heldout.score_entry(summary)})
    if points:
        clock.stage("curve")
    heldout.write_sample_sheet(folders[task.guidance[-1]], sheet)
    result = _result(task, out, threads, summaries[task.guidance[-1]], scores, points, sheet, clock)
    write_text_atomic(out / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def _result(task: Task, out: Path, threads: int, headline: dict[str, Any], scores: dict[str, Any],
            curve: list[dict[str, Any]], sheet: Path, clock: _Clock) -> dict[str, Any]:  # fmt: skip
    """What a run measured and where it wrote it, for `result.json`."""
    from textimg.checkpoint import read_checkpoint

    run_dir = out / "run"
    checkpoint = run_dir / "checkpoint.pt"
    training = read_training_log(run_dir)
    if training is None:
        raise TextimgError(f"{run_dir} has no training log (metrics.jsonl)")
    paths = {"texts": out / "texts", "corpus": out / "corpus", "run": run_dir,
             "checkpoint": checkpoint, "samples": out / "eval" / "samples",
             "clean_renderings": out / "clean", "scores": out / "scores", "sheet": sheet,
             "result": out / "result.json"}  # fmt: skip
    return {
        "seed": task.seed,
        "settings": asdict(task),
        "steps": training.steps,
        "parameters": sum(v.numel() for v in read_checkpoint(checkpoint)["ema"].values()),
        "train_images_per_s": round(training.images_per_s, 1),
        "threads": threads,
        "ocr": headline["ocr"],
        "scores": scores,
        "curve": curve,
        "seconds": clock.seconds,
        "total_seconds": clock.total(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sheet": str(sheet),
        "paths": {role: str(path) for role, path in paths.items()},
    }
