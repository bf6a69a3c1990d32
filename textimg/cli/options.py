"""Options that several commands share, defined once as `Annotated` aliases.

One name keeps one meaning on every command: `--samples` is images per prompt, `--batch-size` a
training batch and `--ocr-batch` an OCR one, `--workers 0` all cores, `-o` short for `--out`. A
choice lists its allowed values in `--help`, taken from where they are defined (the sampler
names, `textimg.distributed.DEVICES`, the OCR engines, the synth placements), so a new value
appears in the help and is accepted as soon as the library has it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from textimg.choices import DEFAULT_ENGINE, ENGINES, PLACEMENTS, SAMPLERS
from textimg.distributed import DEVICES
from textimg.errors import TextimgError, check_choice

Sampler = Literal[SAMPLERS]
Device = Literal[DEVICES]
EngineName = Literal[ENGINES]
PlacementName = Literal[PLACEMENTS]


def out_option(help: str, show_default: bool = False) -> Any:
    """`--out`/`-o` with the command's own description of what it writes."""
    return typer.Option("--out", "-o", help=help, show_default=show_default)


def one_of(option: str, allowed: tuple[str, ...]) -> Callable[[str], str]:
    """A parser refusing a value outside `allowed` in the wording every setting uses
    (`check_choice`), as one `Error:` line; the `Literal` type still lists `allowed` in help."""

    def parse(value: str) -> str:
        check_choice(option, value, allowed)
        return value

    return parse


OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace output files that already exist.")
]


def worker_count(value: str | int) -> int:
    """`--workers` as a count: 0 means all cores, a negative count is refused in one line."""
    try:
        count = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a whole number") from None
    if count < 0:
        raise TextimgError(f"--workers must be 0 (all cores) or more, got {count}")
    return count


WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        parser=worker_count,
        help="Parallel workers; 0 (the default) means all cores.",
    ),
]
DeviceOption = Annotated[
    Device | None,
    typer.Option(
        "--device",
        parser=one_of("--device", DEVICES),
        help="Where to run; auto: this process's GPU when there is one, else the CPU.",
    ),
]

# Sampling, as `sample` and `eval` draw images.
PromptsOption = Annotated[
    Path | None,
    typer.Option(
        "--prompts",
        help="Prompts file: JSONL of {key, text} (test_split.jsonl from textimg pack), or text "
        "with one prompt a line (keys line-N; a literal \\n starts a new line).",
        show_default=False,
    ),
]
SamplesOption = Annotated[int, typer.Option("--samples", min=1, help="Images per prompt.")]
StepsOption = Annotated[int, typer.Option("--steps", min=1, help="Sampling steps.")]
GuidanceOption = Annotated[
    float, typer.Option("--guidance", help="Classifier-free guidance scale; 1 = none.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="The same seed gives the same images.")]
SamplerOption = Annotated[
    Sampler,
    typer.Option(
        "--sampler",
        parser=one_of("--sampler", SAMPLERS),
        help="ddim: deterministic (Song et al. 2021); ancestral: DDPM's, noisy.",
    ),
]
SrStepsOption = Annotated[
    int | None,
    typer.Option(
        "--sr-steps", min=1, help="Upsampling steps (default: --steps).", show_default=False
    ),
]
SrGuidanceOption = Annotated[
    float,
    typer.Option("--sr-guidance", help="Upsampling guidance; 1 = none, as the original."),
]

# OCR, as `score`, `transcribe` and `eval` read images.
EngineOption = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        parser=one_of("--engine", ENGINES),
        help="OCR engine: rapidocr (PP-OCRv6, the most accurate in docs/eval.md), easyocr, or "
        "tesseract (a cross-check, where it is installed).",
    ),
]
SelectEngineOption = Annotated[
    EngineName | None,
    typer.Option(
        "--select-engine",
        parser=one_of("--select-engine", ENGINES),
        help="Rerank: OCR engine that selects (default: --engine); the other engine then "
        "scores the pick.",
        show_default=False,
    ),
]
UpscaleOption = Annotated[
    int,
    typer.Option(
        "--upscale",
        min=0,
        help="Integer enlargement before OCR; 0 reads images under 256 px at 2x.",
    ),
]
MinConfidenceOption = Annotated[
    float,
    typer.Option(
        "--min-confidence", min=0, max=1, help="Drop OCR detections below this confidence."
    ),
]
CornerMarginOption = Annotated[
    float,
    typer.Option(
        "--corner-margin",
        min=0,
        max=0.5,
        help="Drop lines in an image corner within this margin (the post used 0.05).",
    ),
]
OcrBatchOption = Annotated[
    int, typer.Option("--ocr-batch", min=1, help="Images per OCR detector batch.")
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Folder of the OCR cache (default: $TEXTIMG_CACHE_DIR or ~/.cache/textimg).",
        show_default=False,
    ),
]
NoCacheOption = Annotated[
    bool, typer.Option("--no-cache", help="Read every image again, ignore the cache.")
]

__all__ = [
    "DEFAULT_ENGINE",
    "PLACEMENTS",
    "CacheDirOption",
    "CornerMarginOption",
    "DeviceOption",
    "EngineOption",
    "GuidanceOption",
    "MinConfidenceOption",
    "NoCacheOption",
    "OcrBatchOption",
    "OverwriteOption",
    "PlacementName",
    "PromptsOption",
    "SamplerOption",
    "SamplesOption",
    "SeedOption",
    "SelectEngineOption",
    "SrGuidanceOption",
    "SrStepsOption",
    "StepsOption",
    "UpscaleOption",
    "WorkersOption",
    "one_of",
    "out_option",
    "worker_count",
]
