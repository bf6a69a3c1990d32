"""The trainer's report drawn for people: the run summary, then a progress bar with the latest loss
and lr. `train` and `demo` both show training this way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from textimg.config import RunConfig
    from textimg.train import RunStart, TrainReport


def run_summary(config: RunConfig, start: RunStart, out: Path) -> str:
    """The few lines a run starts with; every setting is in `out/config.json`."""
    model, cfg = config.model, config.train
    channels = "grayscale" if model.image_channels == 1 else f"{model.image_channels} channels"
    size = f"{model.image_size} px"
    if config.super_resolution.low_res_size:
        size = f"{config.super_resolution.low_res_size} -> {size} (super-resolution)"
    resumed = f" (resumed at step {start.start_step})" if start.start_step else ""
    accumulation = f" x {cfg.grad_accum} accumulated" if cfg.grad_accum > 1 else ""
    precision = "bf16" if start.device.startswith("cuda") else "fp32"
    data = ", ".join(config.data.shards) or "none"
    rows = [
        ("model", f"{start.parameters / 1e6:.2f}M parameters, {size}, {channels}, "
                  f"{model.conditioning} text, {config.diffusion.prediction} prediction"),
        ("steps", f"{start.start_step} -> {cfg.steps}{resumed}, lr {cfg.lr:g}, "
                  f"checkpoint every {cfg.checkpoint_every}"),
        ("batch", f"{cfg.batch_size} per process x {start.processes} process(es){accumulation}"),
        ("device", f"{start.device}, {precision}"),
        ("data", data),
        ("out", f"{out} (every setting: {out / 'config.json'})"),
    ]  # fmt: skip
    return "\n".join(f"{name:<7} {value}" for name, value in rows)


@contextmanager
def train_progress(config: RunConfig, out: Path) -> Iterator[TrainReport]:
    """The trainer's report drawn on stderr: the run summary, then a bar with the latest loss and
    lr; notes print above it. Under torchrun only rank 0 draws."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from textimg.distributed import Placement
    from textimg.train import TrainReport

    bar = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=Placement.from_environment().rank != 0,
    )

    def note(line: str) -> None:
        bar.console.print(line, markup=False, highlight=False)

    def started(start: RunStart) -> None:
        note(run_summary(config, start, out))
        bar.add_task("", total=config.train.steps, completed=start.start_step)
        bar.start()

    def stepped(done: int, description: str | None) -> None:
        bar.update(bar.task_ids[0], completed=done, description=description)

    try:
        yield TrainReport(started=started, stepped=stepped, note=note)
    finally:
        bar.stop()
