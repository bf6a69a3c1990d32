"""A training run's directory: the files it keeps, apart from the loop that writes them.

`config.json` (every setting but the run-time ones), `checkpoint.pt` (see `textimg.checkpoint`),
`metrics.jsonl` (one JSON line per logged step), `samples/step-NNNNNN.png` and `loss.png`. A run
directory is never overwritten by a fresh run without `overwrite`: neither a run with a checkpoint
nor files this run did not write (a `config.json` of other settings, a `metrics.jsonl` with no
`config.json`). A resumed or unfinished one is continued, its metrics cut back to the
checkpoint's step so the log has each step once; a run of the same config stopped before its
first checkpoint starts over.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textimg.checkpoint import CHECKPOINT_NAME, read_checkpoint
from textimg.config import RunConfig, from_dict, to_dict
from textimg.errors import TextimgError
from textimg.files import write_text_atomic

METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"
RUN_FILES = (CONFIG_NAME, METRICS_NAME, CHECKPOINT_NAME, "loss.png", "samples")
"""What a run writes into its directory: a fresh run refuses a directory holding any of them."""


def open_run_dir(
    config: RunConfig, out: Path, resume: bool, is_main: bool, overwrite: bool = False
) -> dict[str, Any] | None:
    """The checkpoint this run continues, or None for a fresh run: a fresh run never overwrites
    a run directory unless `overwrite`, a resumed one must match its model and still have steps
    to go. Rank 0 (`is_main`) then writes `config.json` and drops the metrics logged after the
    checkpoint."""
    state = _checkpoint_to_continue(config, out, resume, overwrite)
    if state is None and not overwrite:
        _refuse_other_files(config, out)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / CONFIG_NAME, _config_text(config))
        _keep_metrics_until(out / METRICS_NAME, state["step"] if state else 0)
    return state


def _config_text(config: RunConfig) -> str:
    return json.dumps(to_dict(config), indent=2) + "\n"


def _refuse_other_files(config: RunConfig, out: Path) -> None:
    """Refuse a fresh run into a directory holding run files that are not this run's own: only
    the same config (a run stopped before its first checkpoint) may start over in it."""
    config_path = out / CONFIG_NAME
    if config_path.is_file():
        try:
            same = json.loads(config_path.read_text(encoding="utf-8")) == json.loads(
                _config_text(config)
            )
        except (OSError, ValueError):  # not JSON, or not UTF-8: not a config this run wrote
            same = False
        if same:
            return
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        raise TextimgError(
            f"{out} already holds {found[0]}, which this run did not write; pass --resume to "
            "continue a run there, --overwrite to replace it, or choose another --out"
        )


def _checkpoint_to_continue(
    config: RunConfig, out: Path, resume: bool, overwrite: bool = False
) -> dict[str, Any] | None:
    """The checkpoint in `out` that this run continues, refused where it cannot; None if none
    (or, with `overwrite`, where a fresh run replaces it)."""
    checkpoint_path = out / CHECKPOINT_NAME
    if resume or same_run_unfinished(checkpoint_path, config):
        state = read_checkpoint(checkpoint_path)
        saved = from_dict(state["config"])
        model_settings = (config.model, config.diffusion, config.super_resolution)
        if (saved.model, saved.diffusion, saved.super_resolution) != model_settings:
            raise TextimgError(
                f"{checkpoint_path} was trained with another model or diffusion config"
            )
        if state["step"] >= config.train.steps:
            raise TextimgError(
                f"{checkpoint_path} is already at step {state['step']}; pass a larger --steps"
            )
        return state
    if checkpoint_path.exists() and not overwrite:
        raise TextimgError(
            f"{out} already holds a run; pass --resume to continue it, --overwrite to replace "
            "it, or choose another --out"
        )
    return None


def write_loss_plot(metrics_path: Path, out: Path) -> None:
    """`loss.png`: loss against step from `metrics.jsonl`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot([r["step"] for r in rows], [r["loss"] for r in rows], linewidth=0.8)
    axis.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)


def append_metrics(path: Path, row: dict[str, Any]) -> None:
    """Add one logged step's line to `metrics.jsonl`."""
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def _keep_metrics_until(path: Path, step: int) -> None:
    """Drop lines logged after `step` by a run that was killed before its next checkpoint, and
    the unfinished last line of a write the kill cut short (kept where it is a whole row)."""
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    kept = []
    for number, line in enumerate(lines, start=1):
        step_logged = _logged_step(line) if line.strip() else None
        if step_logged is None and line.strip() and number < len(lines):
            raise TextimgError(
                f"{path}:{number} is not a metrics line of textimg; delete that line (or move "
                "the file away, losing the loss curve so far) and run the command again"
            )
        if step_logged is not None and step_logged <= step:
            kept.append(line.decode() + "\n")
    write_text_atomic(path, "".join(kept))


def _logged_step(line: bytes) -> int | None:
    """The step a `metrics.jsonl` line logs, or None where it is no whole row."""
    try:
        row = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return row["step"] if isinstance(row, dict) and isinstance(row.get("step"), int) else None


def same_run_unfinished(checkpoint_path: Path, config: RunConfig) -> bool:
    """Whether `checkpoint_path` is this very run (the same config) stopped before its last
    step: then the same command continues it, as `pack` and `eval` continue theirs."""
    if not checkpoint_path.exists():
        return False
    state = read_checkpoint(checkpoint_path, mmap=True)
    return from_dict(state["config"]) == config and state["step"] < config.train.steps
