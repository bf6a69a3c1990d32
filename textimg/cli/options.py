"""Options that several commands share, defined once as `Annotated` aliases.

One name keeps one meaning on every command: `--samples` is images per prompt, `--batch-size` a
training batch and `--ocr-batch` an OCR one, `--workers 0` all cores, `-o` short for `--out`. A
choice lists its allowed values in `--help`, taken from where they are defined (the sampler
names, `textimg.distributed.DEVICES`, the OCR engines, the synth placements), so a new value
appears in the help and is accepted as soon as the library has it.

Every value is checked by the same parser wherever it appears: a path (`user_path`: `~` expanded
before any part of a command sees it), a number (`number`: finite and in range, so `nan` or `inf`
never reaches a sampler), a seed (`seed_option`: what the random generators accept).
"""

from __future__ import annotations

import math
import os
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


def user_path(value: str | os.PathLike[str]) -> Path:
    """A path option or argument as the shell would have expanded it: `~` and `~user` are the
    home folder. Every path a user gives goes through here when it is parsed, so no part of a
    command sees the literal `~` (pandas would expand it, `open` would not, and a run would write
    half its files in one folder and half in another)."""
    return Path(os.path.expanduser(os.fspath(value)))


def out_option(help: str, show_default: bool = False) -> Any:
    """`--out`/`-o` with the command's own description of what it writes."""
    return typer.Option("--out", "-o", parser=user_path, help=help, show_default=show_default)


def _span(low: float | None, high: float | None) -> str:
    """A range in words, whole numbers in full (a seed's bound is no `9.2e+18`)."""
    low_text, high_text = (f"{v:g}" if isinstance(v, float) else str(v) for v in (low, high))
    if low is not None and high is not None:
        return f"between {low_text} and {high_text}"
    return f"at least {low_text}" if low is not None else f"at most {high_text}"


def number(
    option: str, kind: type[float] | type[int] = float, low: float | None = None,
    high: float | None = None,
) -> Callable[[str | float], Any]:  # fmt: skip
    """A parser of `option`'s numbers: `kind` (else a usage error, as for any option), finite
    (`nan` and `inf` parse as floats but draw black images or crash a sampler), and within
    `low`..`high`; a bad one is one line naming the option and what it accepts."""

    def parse(value: str | float) -> Any:
        try:
            parsed = kind(value)
        except (TypeError, ValueError):
            whole = "a whole number" if kind is int else "a number"
            raise typer.BadParameter(f"{value!r} is not {whole}") from None
        if not math.isfinite(parsed):
            raise TextimgError(f"{option} must be a finite number, got {value!r}")
        if (low is not None and parsed < low) or (high is not None and parsed > high):
            raise TextimgError(f"{option} must be {_span(low, high)}, got {value!r}")
        return parsed

    return parse


def float_option(
    *names: str, help: str, low: float | None = None, high: float | None = None, **extra: Any
) -> Any:
    """A float option checked by `number` (the range also shown in `--help`)."""
    parser = number(names[0], float, low, high)
    return typer.Option(*names, parser=parser, min=low, max=high, help=help, **extra)


SEED_RANGE = (-(2**63), 2**63 - 1)
"""Seeds a 64-bit integer holds: torch's generators, TOML and JSON all take them."""


def seed_option(help: str) -> Any:
    """`--seed`, refusing a number the random generators cannot take in one line, not a
    traceback from deep inside torch."""
    return typer.Option("--seed", parser=number("--seed", int, *SEED_RANGE), help=help)


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
        parser=user_path,
        help="Prompts file: JSONL of {key, text} (test_split.jsonl from textimg pack), or text "
        "with one prompt a line (keys line-N; a literal \\n starts a new line).",
        show_default=False,
    ),
]
SamplesOption = Annotated[int, typer.Option("--samples", min=1, help="Images per prompt.")]
StepsOption = Annotated[int, typer.Option("--steps", min=1, help="Sampling steps.")]
GuidanceOption = Annotated[
    float, float_option("--guidance", help="Classifier-free guidance scale; 1 = none.")
]
SeedOption = Annotated[int, seed_option("The same seed gives the same images.")]
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
    float_option("--sr-guidance", help="Upsampling guidance; 1 = none, as the original."),
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
    float_option(
        "--min-confidence", low=0, high=1, help="Drop OCR detections below this confidence."
    ),
]
CornerMarginOption = Annotated[
    float,
    float_option(
        "--corner-margin",
        low=0,
        high=0.5,
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
        parser=user_path,
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
    "float_option",
    "number",
    "one_of",
    "out_option",
    "seed_option",
    "user_path",
    "worker_count",
]
