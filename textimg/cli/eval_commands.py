"""`textimg score`, `textimg transcribe`, `textimg eval`: parse options, build the OCR engines,
call the library (`scoring`, `evaluate`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from textimg.cli.app import app
from textimg.cli.options import (
    DEFAULT_ENGINE,
    CacheDirOption,
    CornerMarginOption,
    DeviceOption,
    EngineOption,
    GuidanceOption,
    MinConfidenceOption,
    NoCacheOption,
    OcrBatchOption,
    OverwriteOption,
    PromptsOption,
    SamplerOption,
    SamplesOption,
    SeedOption,
    SelectEngineOption,
    SrGuidanceOption,
    SrStepsOption,
    StepsOption,
    UpscaleOption,
    float_option,
    one_of,
    out_option,
    user_path,
)
from textimg.cli.protocol_output import ScoreCommand, number_cell, print_protocol_summary
from textimg.errors import TextimgError
from textimg.eval.protocols import PROTOCOL_MODULES

SampleBatchOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="Images sampled per network call (whole prompts of K samples each): larger "
        "is faster until memory runs out; the images do not depend on it.",
    ),
]
AllowMixedOption = Annotated[
    bool,
    typer.Option(
        "--allow-mixed",
        help="Put side by side runs scored by different protocols or OCR engines (refused "
        "otherwise: their numbers measure different things).",
    ),
]


if TYPE_CHECKING:
    from textimg.eval.ocr import OcrEngine
    from textimg.eval.scoring import ProgressCallback


@dataclass(frozen=True)
class OcrOptions:
    """The OCR options `score`, `transcribe` and `eval` share, gathered by name once per command,
    so each engine is built from the same reading settings and cache."""

    upscale: int
    min_confidence: float
    corner_margin: float
    batch_size: int
    cache_dir: Path | None
    no_cache: bool

    def build_engine(self, engine: str) -> OcrEngine:
        """The OCR engine `engine` with these settings, on the on-disk cache unless disabled."""
        from textimg.eval.ocr import OcrSettings, default_cache_path, make_engine, open_cache

        settings = OcrSettings(
            engine=engine,
            upscale=self.upscale,
            min_confidence=self.min_confidence,
            corner_margin=self.corner_margin,
            batch_size=self.batch_size,
        )
        cache_path = self.cache_dir / "ocr.sqlite" if self.cache_dir else default_cache_path()
        return make_engine(settings, None if self.no_cache else open_cache(cache_path))


@contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    """A bar per stage ("sampling", "reading") on stderr while the block runs; none where stderr
    is not a terminal, so logs and pipes get the results alone."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    bar = Progress(
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    tasks: dict[str, TaskID] = {}

    def report(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield report


def _counts(counts: dict[str, int]) -> str:
    """`{"ok": 3, "missing_image": 1}` as `ok 3, missing_image 1`: counts for people to read."""
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "none"


def _refuse_if_nothing_scored(counts: dict[str, Any], where: Path) -> None:
    """A run that scored no image measured nothing: say why (the statuses) and exit non-zero."""
    if counts["scored"] == 0:
        raise TextimgError(
            f"no image was scored ({_counts(counts['status'])}); the rows and their errors are "
            f"in {where}"
        )


@app.command(cls=ScoreCommand)
def score(
    out: Annotated[Path, out_option("Folder for results.csv/.parquet, summary.json, report.html.")],
    images: Annotated[
        Path | None,
        typer.Argument(
            parser=user_path,
            help="Folder of KEY.png/.jpg images, or WebDataset shards (a .tar, a folder, a glob); "
            "left out with --transcripts.",
            show_default=False,
        ),
    ] = None,
    prompts: PromptsOption = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            parser=one_of("--protocol", tuple(PROTOCOL_MODULES)),
            help="Score as this benchmark's own code does, on its own prompt file and image "
            f"names: {', '.join(PROTOCOL_MODULES)}. Alone (or `list`) it lists them.",
            show_default=False,
        ),
    ] = None,
    transcripts: Annotated[
        Path | None,
        typer.Option(
            parser=user_path,
            help="JSONL of {key, transcript} or {key, sample, transcript} lines: score these "
            "readings instead of reading images (no OCR engine is loaded).",
            show_default=False,
        ),
    ] = None,
    ceiling: Annotated[
        bool,
        typer.Option(
            "--ceiling",
            help="With --protocol: also render each prompt's target text with textimg's fonts "
            "and score those clean renderings, by text length (the reader's own error).",
        ),
    ] = False,
    engine: EngineOption = DEFAULT_ENGINE,
    upscale: UpscaleOption = 0,
    min_confidence: MinConfidenceOption = 0.0,
    corner_margin: CornerMarginOption = 0.0,
    ocr_batch: OcrBatchOption = 16,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """OCR existing images (or take supplied transcripts) and score how well each writes its
    prompt (shards without --prompts are scored against each sample's own KEY.txt)."""
    from textimg.eval.scoring import read_prompts
    from textimg.eval.scoring import score as run_score
    from textimg.files import check_output_dir
    from textimg.output_owner import hold_output

    check_output_dir(out)  # before minutes of OCR, not after
    ocr = OcrOptions(
        upscale=upscale, min_confidence=min_confidence, corner_margin=corner_margin,
        batch_size=ocr_batch, cache_dir=cache_dir, no_cache=no_cache,
    )  # fmt: skip
    if (images is None) == (transcripts is None):
        raise TextimgError("give IMAGES to read, or --transcripts FILE.jsonl, not both")
    if protocol is not None or transcripts is not None:
        source = transcripts or images
        assert source is not None
        supplied = transcripts is not None
        _score_by_protocol(
            source, out, prompts, protocol, supplied, ceiling, ocr.build_engine, engine, overwrite
        )
        return
    if ceiling:
        raise TextimgError("--ceiling scores through a protocol: give --protocol NAME")
    if prompts is not None:
        read_prompts(prompts)  # a bad line is refused before the OCR engine loads
    with hold_output(out), progress_bar() as progress:
        summary = run_score(images, prompts, out, ocr.build_engine(engine), progress, overwrite)
    _print_score(summary, out)


def _print_score(summary: dict[str, Any], out: Path) -> None:
    """The one line `score` ends with: counts, trigram and its interval, statuses, report."""
    counts = summary["counts"]
    _refuse_if_nothing_scored(counts, out / "results.csv")
    low, high = summary["trigram"]["ci95"]
    Console().print(
        f"scored {counts['scored']:,} of {counts['rows']:,} images; "
        f"trigram {_cell(summary['trigram']['mean'])} (95% CI {_cell(low)}-{_cell(high)}); "
        f"rows: {_counts(counts['status'])}; report: {out / 'report.html'}",
        highlight=False,
        soft_wrap=True,
    )


def _score_by_protocol(
    source: Path,
    out: Path,
    prompts: Path | None,
    protocol_name: str | None,
    supplied: bool,
    ceiling: bool,
    build_engine: Callable[[str], OcrEngine],
    engine: str,
    overwrite: bool,
) -> None:
    """`score --protocol` (images or supplied transcripts), and `score --transcripts` alone
    (textimg's own metrics); the prompts are read and checked before any engine loads. The
    output folder follows `score`'s rule: another run's results only with `overwrite`."""
    from textimg.eval.protocol_scoring import (
        read_protocol_prompts,
        score_protocol,
        score_transcripts,
    )
    from textimg.eval.protocols import get_protocol
    from textimg.eval.run_identity import RESULT_FILES
    from textimg.output_owner import claim_folder, hold_output

    if prompts is None:
        raise TextimgError("scoring by protocol or from transcripts needs --prompts FILE")
    run = {"command": "score", "protocol": protocol_name, "supplied": supplied,
           "source": str(source.absolute()), "prompts": str(prompts.absolute()),
           "engine": None if supplied else engine, "ceiling": ceiling}  # fmt: skip
    if protocol_name is None:
        with hold_output(out):
            claim_folder(out, run, RESULT_FILES, overwrite)
            _print_score(score_transcripts(source, prompts, out), out)
        return
    protocol = get_protocol(protocol_name)
    prompt_set = read_protocol_prompts(protocol, prompts)
    if ceiling and supplied:
        raise TextimgError("--ceiling reads clean renderings with textimg's engine; it does not "
                           "go with --transcripts")  # fmt: skip
    reader = None if supplied else build_engine(engine)
    with hold_output(out), progress_bar() as progress:
        claim_folder(out, run, (*RESULT_FILES, "ceiling.csv"), overwrite)
        summary = score_protocol(protocol, prompt_set, out, source, reader, ceiling, progress)
    _refuse_if_nothing_scored(summary["counts"], out / "results.csv")
    print_protocol_summary(summary, out)


@app.command()
def transcribe(
    images_dir: Annotated[
        Path,
        typer.Argument(
            parser=user_path, help="Folder of images (searched recursively).", show_default=False
        ),
    ],
    out: Annotated[
        Path, out_option("JSONL to write: {image: relative path, text: transcript} per line.")
    ],
    overwrite: OverwriteOption = False,
    engine: EngineOption = DEFAULT_ENGINE,
    upscale: UpscaleOption = 0,
    min_confidence: MinConfidenceOption = 0.0,
    corner_margin: CornerMarginOption = 0.0,
    ocr_batch: OcrBatchOption = 16,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Write OCR transcripts of a folder of images in the format `textimg pack` reads."""
    from textimg.eval.scoring import transcribe as run_transcribe
    from textimg.files import check_output_file

    check_output_file(out, overwrite)  # before minutes of OCR, not after
    ocr = OcrOptions(
        upscale=upscale, min_confidence=min_confidence, corner_margin=corner_margin,
        batch_size=ocr_batch, cache_dir=cache_dir, no_cache=no_cache,
    ).build_engine(engine)  # fmt: skip
    with progress_bar() as progress:
        counts = run_transcribe(images_dir, out, ocr, progress=progress, overwrite=overwrite)
    skipped = counts["images"] - counts["written"]
    Console().print(
        f"wrote {counts['written']:,} transcripts to {out}; {skipped:,} images skipped "
        f"({counts['unreadable']:,} unreadable, {counts['ocr_error']:,} OCR errors)",
        highlight=False,
        soft_wrap=True,
    )


@app.command(name="eval")
def eval_command(
    checkpoints: Annotated[
        list[Path],
        typer.Argument(
            parser=user_path,
            help="Checkpoints written by textimg train; several give one table.",
            show_default=False,
        ),
    ],
    prompts: PromptsOption = None,
    out: Annotated[
        Path, out_option("Folder: one subfolder per checkpoint, compare.csv.", show_default=True)
    ] = Path("eval"),
    samples: SamplesOption = 4,
    steps: StepsOption = 50,
    guidance: GuidanceOption = 3.0,
    seed: SeedOption = 0,
    sampler: SamplerOption = "ddim",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N prompts.", show_default=False)
    ] = None,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Also score the post's OCR rejection sampling.")
    ] = False,
    keep_only_if_above: Annotated[
        float,
        float_option(
            "--keep-only-if-above",
            help="Rerank: if any sample reaches this trigram, keep only those.",
        ),
    ] = 0.95,
    delete_under: Annotated[
        float,
        float_option("--delete-under", help="Rerank: otherwise drop samples under this trigram."),
    ] = 0.1,
    continue_if_all_pruned: Annotated[
        bool, typer.Option(help="Rerank: keep all samples when none survives pruning.")
    ] = True,
    select_engine: SelectEngineOption = None,
    sr: Annotated[
        Path | None,
        typer.Option(
            "--sr",
            parser=user_path,
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
    sr_steps: SrStepsOption = None,
    sr_guidance: SrGuidanceOption = 1.0,
    device: DeviceOption = None,
    sample_batch: SampleBatchOption = 64,
    engine: EngineOption = DEFAULT_ENGINE,
    upscale: UpscaleOption = 0,
    min_confidence: MinConfidenceOption = 0.0,
    corner_margin: CornerMarginOption = 0.0,
    ocr_batch: OcrBatchOption = 16,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    allow_mixed: AllowMixedOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Sample K images per prompt from each checkpoint, score them by OCR, optionally rerank."""
    from textimg.distributed import Placement, resolve_device
    from textimg.eval.evaluate import EvalSettings, SamplingSettings, check_inputs, evaluate
    from textimg.eval.rerank import PruneSettings
    from textimg.output_owner import hold_output

    check_inputs(checkpoints, prompts, out, sr)  # before the OCR engines load, not after
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
        overwrite=overwrite,
    )
    ocr_options = OcrOptions(
        upscale=upscale, min_confidence=min_confidence, corner_margin=corner_margin,
        batch_size=ocr_batch, cache_dir=cache_dir, no_cache=no_cache,
    )  # fmt: skip
    ocr = ocr_options.build_engine(engine)
    select = None
    if rerank and select_engine not in (None, engine):
        select = ocr_options.build_engine(select_engine)
    with hold_output(out), progress_bar() as progress:
        table = evaluate(checkpoints, prompts, out, ocr, settings, select, progress, allow_mixed)
    if table:  # empty on a torchrun rank other than 0: rank 0 prints
        _print_comparison(table, rerank, out)


@app.command()
def compare(
    runs: Annotated[
        list[Path],
        typer.Argument(
            parser=user_path,
            help="Output folders of `score` or `eval` (each holds summary.json).",
            show_default=False,
        ),
    ],
    out: Annotated[Path, out_option("CSV to write: one row per run.")],
    allow_mixed: AllowMixedOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Put scored runs side by side, refusing runs scored by different protocols or readers."""
    from textimg.eval.comparable import compare_runs
    from textimg.files import check_output_file

    check_output_file(out, overwrite)
    rows = compare_runs(runs, out, allow_mixed)
    Console().print(f"wrote {len(rows)} runs side by side to {out}", highlight=False)


def _print_comparison(table: list[dict[str, Any]], rerank: bool, out: Path) -> None:
    """The compare table for people to read; exits non-zero if a checkpoint scored nothing."""
    from rich.table import Table

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
    failed = [row["checkpoint"] for row in table if row["rows"] == row["failed"]]
    if failed:
        where = ", ".join(str(out / name / "results.csv") for name in failed)
        raise TextimgError(f"no image was scored: every prompt failed (each row's error: {where})")


_cell = number_cell
