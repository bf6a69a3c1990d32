"""`textimg score`, `textimg transcribe`: parse options, build the OCR engine, call the library."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from textimg.cli.app import app

if TYPE_CHECKING:
    from textimg.ocr import OcrEngine

Engine = Annotated[
    str, typer.Option(help="OCR engine: easyocr, or tesseract where it is installed.")
]
Upscale = Annotated[
    int,
    typer.Option(help="Integer enlargement before OCR; 0 reads images under 256 px at 2x."),
]
MinConfidence = Annotated[
    float, typer.Option(help="Drop OCR detections below this confidence (0-1).")
]
CornerMargin = Annotated[
    float,
    typer.Option(help="Drop lines in an image corner within this margin (the post used 0.05)."),
]
BatchSize = Annotated[int, typer.Option(help="Images per OCR detector batch.")]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        help="Folder of the OCR cache (default: $TEXTIMG_CACHE_DIR or ~/.cache/textimg).",
        show_default=False,
    ),
]
NoCache = Annotated[
    bool, typer.Option("--no-cache", help="Read every image again, ignore the cache.")
]


def build_engine(
    engine: str,
    upscale: int,
    min_confidence: float,
    corner_margin: float,
    batch_size: int,
    cache_dir: Path | None,
    no_cache: bool,
) -> OcrEngine:
    """The OCR engine the shared options describe, with the on-disk cache unless disabled."""
    from textimg.ocr import OcrCache, OcrSettings, default_cache_path, make_engine

    settings = OcrSettings(
        engine=engine,
        upscale=upscale,
        min_confidence=min_confidence,
        corner_margin=corner_margin,
        batch_size=batch_size,
    )
    cache_path = cache_dir / "ocr.sqlite" if cache_dir else default_cache_path()
    return make_engine(settings, None if no_cache else OcrCache(cache_path))


@app.command()
def score(
    images: Annotated[
        Path,
        typer.Argument(
            help="Folder of KEY.png/.jpg images, or WebDataset shards (a .tar, a folder, a glob).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for results.csv/.parquet, summary.json and report.html.",
            show_default=False,
        ),
    ],
    prompts: Annotated[
        Path | None,
        typer.Option(
            help="JSONL of {key, text} (test_split.jsonl). Shards without it use each KEY.txt.",
            show_default=False,
        ),
    ] = None,
    engine: Engine = "easyocr",
    upscale: Upscale = 0,
    min_confidence: MinConfidence = 0.0,
    corner_margin: CornerMargin = 0.0,
    batch_size: BatchSize = 16,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
) -> None:
    """OCR existing images and score how well each writes its prompt."""
    from rich.console import Console

    from textimg.scoring import score as run_score

    ocr = build_engine(
        engine, upscale, min_confidence, corner_margin, batch_size, cache_dir, no_cache
    )
    summary = run_score(images, prompts, out, ocr)
    counts = summary["counts"]
    trigram = summary["trigram"]
    Console().print(
        f"scored {counts['scored']} of {counts['rows']} images; trigram {trigram['mean']} "
        f"(95% CI {trigram['ci95']}); statuses {counts['status']}; report: {out / 'report.html'}"
    )


@app.command()
def transcribe(
    images_dir: Annotated[
        Path, typer.Argument(help="Folder of images (searched recursively).", show_default=False)
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="JSONL to write: {image: relative path, text: transcript} per line.",
            show_default=False,
        ),
    ],
    engine: Engine = "easyocr",
    upscale: Upscale = 0,
    min_confidence: MinConfidence = 0.0,
    corner_margin: CornerMargin = 0.0,
    batch_size: BatchSize = 16,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
) -> None:
    """Write OCR transcripts of a folder of images in the format `textimg pack` reads."""
    from rich.console import Console

    from textimg.scoring import transcribe as run_transcribe

    ocr = build_engine(
        engine, upscale, min_confidence, corner_margin, batch_size, cache_dir, no_cache
    )
    counts = run_transcribe(images_dir, out, ocr)
    Console().print(f"wrote {counts['written']} transcripts to {out}; {counts}")
