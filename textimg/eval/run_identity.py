"""What makes a `score` or `eval` run the same run, as `textimg.output_owner.claim_folder`
records it in the folder the run writes: the inputs and settings that change a result, and none
that do not (OCR batching, the device, how many images share a sampling call), so the same
command continues its own unfinished run and a changed one never replaces it silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textimg.eval.ocr import OcrEngine

if TYPE_CHECKING:
    from textimg.eval.evaluate import CheckpointSampler
    from textimg.eval.scoring import PromptLine

RESULT_FILES = ("results.csv", "results.parquet", "summary.json", "report.html")
"""What `scoring.write_results` writes into a results folder."""

EVAL_FILES = (*RESULT_FILES, "*.png", "results.partial*.csv")
"""What `eval` writes into one checkpoint's folder: results, samples, an interrupted run's rows."""

RUNTIME_SETTINGS = ("device", "sample_batch", "overwrite")
"""`EvalSettings` fields that change no result."""


def ocr_identity(engine: OcrEngine) -> dict[str, Any]:
    """The engine as `describe` gives it, less its batch size (which changes no reading)."""
    described = engine.describe()
    described["settings"] = {
        key: value for key, value in described["settings"].items() if key != "batch_size"
    }
    return described


def score_run(images: Path, prompts: Path | None, engine: OcrEngine) -> dict[str, Any]:
    """A `score` run: its images, its prompts file and its OCR."""
    where = None if prompts is None else str(prompts.absolute())
    return {"command": "score", "images": str(images.absolute()), "prompts": where,
            "ocr": ocr_identity(engine)}  # fmt: skip


def eval_run(
    sampler: CheckpointSampler, lines: Sequence[PromptLine], engine: OcrEngine
) -> dict[str, Any]:
    """One checkpoint's evaluation: which checkpoint (path and digest) on which prompts, read by
    which OCR, with every setting that changes a result."""
    settings = dataclasses.asdict(sampler.settings)
    for runtime in RUNTIME_SETTINGS:
        del settings[runtime]
    prompts = json.dumps([(line.key, line.text, line.error) for line in lines])
    return {"command": "eval", "checkpoint": str(sampler.path.absolute()),
            "sha256_16": sampler.digest,
            "prompts_sha256_16": hashlib.sha256(prompts.encode()).hexdigest()[:16],
            "ocr": ocr_identity(engine), **settings}  # fmt: skip


def eval_table_run(names: Sequence[str], checkpoints: Sequence[Path]) -> dict[str, Any]:
    """An `eval` command's folder, whose `compare.csv` is the table of these checkpoints."""
    paths = {
        name: str(Path(path).absolute()) for name, path in zip(names, checkpoints, strict=True)
    }
    return {"command": "eval", "checkpoints": paths}
