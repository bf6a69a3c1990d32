"""`textimg score`, `textimg transcribe`, `textimg eval`: parse options, build the OCR engines,
call the library (`scoring`, `evaluate`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from textimg.cli.app import app

if TYPE_CHECKING:
    from textimg.eval.ocr import OcrEngine

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
    from textimg.eval.ocr import OcrCache, OcrSettings, default_cache_path, make_engine

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

    from textimg.eval.scoring import score as run_score

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

    from textimg.eval.scoring import transcribe as run_transcribe

    ocr = build_engine(
        engine, upscale, min_confidence, corner_margin, batch_size, cache_dir, no_cache
    )
    counts = run_transcribe(images_dir, out, ocr)
    Console().print(f"wrote {counts['written']} transcripts to {out}; {counts}")


@app.command(name="eval")
def eval_command(
    checkpoints: Annotated[
        list[Path],
        typer.Argument(
            help="Checkpoints written by textimg train; several give one table.", show_default=False
        ),
    ],
    prompts: Annotated[
        Path,
        typer.Option(
            help="JSONL of {key, text}, e.g. test_split.jsonl from textimg pack.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder: one subfolder per checkpoint, compare.csv.",
        ),
    ] = Path("eval"),
    samples: Annotated[int, typer.Option(min=1, help="Images per prompt (K).")] = 4,
    steps: Annotated[int, typer.Option(min=1, help="Sampling steps.")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 3.0,
    seed: Annotated[int, typer.Option(help="The same seed gives the same images.")] = 0,
    sampler: Annotated[str, typer.Option(help="ddim (deterministic) or ancestral.")] = "ddim",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N prompts.", show_default=False)
    ] = None,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Also score the post's OCR rejection sampling.")
    ] = False,
    keep_only_if_above: Annotated[
        float, typer.Option(help="Rerank: if any sample reaches this trigram, keep only those.")
    ] = 0.95,
    delete_under: Annotated[
        float, typer.Option(help="Rerank: otherwise drop samples under this trigram.")
    ] = 0.1,
    continue_if_all_pruned: Annotated[
        bool, typer.Option(help="Rerank: keep all samples when none survives pruning.")
    ] = True,
    select_engine: Annotated[
        str | None,
        typer.Option(
            help="Rerank: OCR engine that selects (default: --engine); the other "
            "engine then scores the pick.",
            show_default=False,
        ),
    ] = None,
    sr: Annotated[
        Path | None,
        typer.Option(
            "--sr",
            help="Super-resolution checkpoint (the cascade): every sample is upsampled and the "
            "large images are scored; with --rerank only the survivors are, tiled to --sr-count, "
            "and the best upsampled pick is scored (the post's steps 4-6).",
            show_default=False,
        ),
    ] = None,
    sr_count: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Rerank with --sr: images upsampled per prompt (default K).",
            show_default=False,
        ),
    ] = None,
    sr_steps: Annotated[
        int | None,
        typer.Option(min=1, help="Upsampling steps (default: --steps).", show_default=False),
    ] = None,
    sr_guidance: Annotated[
        float, typer.Option(help="Upsampling guidance; 1 = none, as the original.")
    ] = 1.0,
    device: Annotated[
        str | None,
        typer.Option(
            help="cpu or cuda (default: this rank's GPU when available).", show_default=False
        ),
    ] = None,
    sample_batch: Annotated[
        int,
        typer.Option(
            min=1,
            help="Images sampled per network call (whole prompts of K samples each): larger "
            "is faster until memory runs out; the images do not depend on it.",
        ),
    ] = 64,
    engine: Engine = "easyocr",
    upscale: Upscale = 0,
    min_confidence: MinConfidence = 0.0,
    corner_margin: CornerMargin = 0.0,
    batch_size: BatchSize = 16,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
) -> None:
    """Sample K images per prompt from each checkpoint, score them by OCR, optionally rerank."""
    from rich.console import Console
    from rich.table import Table

    from textimg.distributed import Placement, resolve_device
    from textimg.eval.evaluate import (
        EvalSettings,
        SamplingSettings,
        check_inputs,
        check_super_resolution,
        evaluate,
    )
    from textimg.eval.rerank import PruneSettings

    check_inputs(checkpoints, prompts)
    check_super_resolution(sr, checkpoints)
    settings = EvalSettings(
        sampling=SamplingSettings(samples, steps, guidance, seed, sampler),
        limit=limit,
        rerank=rerank,
        prune=PruneSettings(keep_only_if_above, delete_under, continue_if_all_pruned),
        device=str(resolve_device(device or "auto", Placement.from_environment())),
        super_resolution=sr,
        sr_count=sr_count,
        sr_steps=sr_steps,
        sr_guidance=sr_guidance,
        sample_batch=sample_batch,
    )
    ocr_options = (upscale, min_confidence, corner_margin, batch_size, cache_dir, no_cache)
    ocr = build_engine(engine, *ocr_options)
    select = None
    if rerank and select_engine not in (None, engine):
        select = build_engine(select_engine, *ocr_options)
    table = evaluate(checkpoints, prompts, out, ocr, settings, select)
    if not table:
        return  # a torchrun rank other than 0: rank 0 prints
    view = Table("checkpoint", "trigram", "best of K", *(["rerank"] if rerank else []),
                 "cer", "exact share", "prompts", "failed")  # fmt: skip
    for row in table:
        cells = [row["trigram"], row["best_of_k_trigram"]]
        cells += [row["rerank_trigram"]] if rerank else []
        cells += [row["cer"], row["exact_share"]]
        view.add_row(row["checkpoint"], *(_cell(v) for v in cells), str(row["prompts"]),
                     str(row["failed"]))  # fmt: skip
    console = Console()
    console.print(view)
    console.print(f"wrote {out / 'compare.csv'} and one folder per checkpoint under {out}")


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
