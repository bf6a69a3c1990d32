"""`textimg pack`: parse options, call `textimg.data.pack.pack`, show progress and a summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from textimg.cli.app import app
from textimg.cli.options import WorkersOption, float_option, out_option, seed_option, user_path
from textimg.errors import TextimgError

if TYPE_CHECKING:
    from rich.progress import TaskID
    from rich.table import Table

    from textimg.data.pack import PackResult, VerifyProgress
    from textimg.data.shard_job import OnShard, ShardDone


@app.command()
def pack(
    images_dir: Annotated[
        Path,
        typer.Argument(
            parser=user_path,
            help="Folder of the images; paths in --transcripts are relative to it.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        out_option("Output folder for shards, test_split.jsonl, rejects.jsonl and manifest.json."),
    ],
    transcripts: Annotated[
        Path | None,
        typer.Option(
            "--transcripts",
            "-t",
            parser=user_path,
            help="Table of image paths and transcripts (.jsonl, .csv or .parquet). "
            "Without it, each image's transcript is NAME.txt beside it.",
            show_default=False,
        ),
    ] = None,
    image_col: Annotated[
        str, typer.Option(help="Column of --transcripts holding the image path.")
    ] = "image",
    text_col: Annotated[
        str, typer.Option(help="Column of --transcripts holding the transcript.")
    ] = "text",
    test_fraction: Annotated[
        float,
        float_option(
            "--test-fraction",
            low=0,
            high=1,
            help="Share of images held out for testing, chosen by a hash of the path.",
        ),
    ] = 0.05,
    seed: Annotated[int, seed_option("Seed of the train/test split hash.")] = 0,
    shard_size: Annotated[int, typer.Option(help="Samples per shard.")] = 1000,
    max_size: Annotated[
        int | None,
        typer.Option(
            help="Re-encode only images whose longer side exceeds this many pixels "
            "(default: keep every image's exact bytes).",
            show_default=False,
        ),
    ] = None,
    drop_empty: Annotated[
        bool,
        typer.Option(
            "--drop-empty",
            help="Reject images whose transcript is empty instead of packing them as text-free.",
        ),
    ] = False,
    workers: WorkersOption = 0,
) -> None:
    """Pack real images and their transcripts into train/test WebDataset shards."""
    from rich.console import Console

    from textimg.data.pack import PackOptions
    from textimg.data.pack import pack as pack_images
    from textimg.files import check_output_dir
    from textimg.output_owner import hold_output

    check_output_dir(out)

    options = PackOptions(
        image_col=image_col,
        text_col=text_col,
        test_fraction=test_fraction,
        seed=seed,
        shard_size=shard_size,
        max_size=max_size,
        drop_empty=drop_empty,
    )
    with hold_output(out), _progress() as (verified, recorded):
        result = pack_images(
            images_dir, out, transcripts, options, workers or None, verified, recorded
        )
    Console().print(_summary(result))
    if not result.packed:
        raise TextimgError(
            f"nothing packed: every one of the {result.rows:,} rows was rejected "
            f"(reasons in {out / 'rejects.jsonl'})"
            if result.rows
            else f"nothing packed: {transcripts or images_dir} lists no images"
        )


@contextmanager
def _progress() -> Iterator[tuple[VerifyProgress, OnShard]]:
    """A transient bar on stderr per stage: images verified, then shards recorded by the shard
    job (those kept from an earlier run count at once); yields the two callbacks."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def show(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = bar.add_task(label, total=total)
        bar.update(tasks[label], completed=done)

    def verified(done: int, total: int) -> None:
        show("verifying images", done, total)

    def recorded(shard: ShardDone) -> None:
        show("writing shards", shard.done, shard.total)

    with bar:
        yield verified, recorded


def _summary(result: PackResult) -> Table:
    """The end-of-run table: what was packed, held out and rejected, and the bytes it made."""
    from rich.table import Table

    from textimg.data.pack import REASONS

    table = Table(title=f"textimg pack -> {result.out}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("packed (train)", f"{result.train:,}")
    table.add_row("held out (test)", f"{result.test:,}")
    for reason, count in result.rejected.items():
        table.add_row(f"rejected: {REASONS[reason]}", f"{count:,}")
    table.add_row("image bytes packed", f"{result.image_bytes:,}")
    table.add_row("shard bytes", f"{result.shard_bytes:,}")
    table.add_row(
        "shards written / already done", f"{result.shards_written} / {result.shards_resumed}"
    )
    rate = result.image_bytes / 1e6 / max(result.seconds, 1e-9)
    table.add_row("time", f"{result.seconds:.1f} s ({rate:.1f} MB/s)")
    return table
