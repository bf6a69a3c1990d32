"""Commands that make and show data: `fonts`, `synth`, `merge`, `preview`, `demo`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from textimg.choices import DEMO_TASKS
from textimg.cli.app import app
from textimg.cli.options import (
    PLACEMENTS,
    OverwriteOption,
    PlacementName,
    WorkersOption,
    one_of,
    out_option,
    seed_option,
    user_path,
)
from textimg.errors import TextimgError

DemoTaskName = Literal[DEMO_TASKS]

if TYPE_CHECKING:
    from textimg.data.drawable import RejectedText
    from textimg.data.fonts import FontInfo
    from textimg.data.shard_job import OnShard, ShardDone
    from textimg.data.synth import SynthReport

console = Console()

FontListOption = Annotated[
    Path | None,
    typer.Option(
        "--fonts",
        parser=user_path,
        help="Font list file: one family name, file name/glob or path a line (# comments). "
        "Default: textimg's curated fonts.txt.",
    ),
]
FontDirOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--font-dir",
        parser=user_path,
        help="Extra folder of .ttf/.otf fonts; every valid font in it is used.",
    ),
]
AllFontsOption = Annotated[
    bool, typer.Option("--all-fonts", help="Use every valid font found, ignoring the font list.")
]
NoSystemOption = Annotated[
    bool,
    typer.Option(
        "--no-system-fonts",
        help="Ignore the system's font folders: only fonts from pip packages and --font-dir "
        "(the same set on every machine, so corpora match byte for byte across machines).",
    ),
]


def _check_font_options(font_list: Path | None, font_dirs: list[Path] | None) -> None:
    """Refuse a font list or folder that does not exist, before any font is looked at."""
    if font_list is not None and not font_list.is_file():
        raise TextimgError(f"font list not found: {font_list}")
    for folder in font_dirs or []:
        if not folder.is_dir():
            raise TextimgError(f"font folder not found: {folder}")


def _catalog(font_list: Path | None, font_dirs: list[Path] | None, all_fonts: bool, no_system):
    from textimg.data.fonts import DEFAULT_FONT_LIST, resolve_fonts

    _check_font_options(font_list, font_dirs)
    chosen_list = None if all_fonts else (font_list or DEFAULT_FONT_LIST)
    return resolve_fonts(chosen_list, font_dirs or [], system=not no_system)


@app.command()
def fonts(
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Show each font-list entry as found or missing, and rejected files."
        ),
    ] = False,
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            parser=user_path,
            help="Write the valid fonts found (one path a line) to this file.",
        ),
    ] = None,
    font_list: FontListOption = None,
    font_dirs: FontDirOption = None,
    all_fonts: AllFontsOption = False,
    no_system_fonts: NoSystemOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Find fonts on this machine, validate them, and list the ones synth will use."""
    from textimg.files import check_output_file, write_text_atomic

    if write is not None:
        check_output_file(write, overwrite)
    catalog = _catalog(font_list, font_dirs, all_fonts, no_system_fonts)
    if check:
        entries = Table(title="Font list entries")
        for column in ("entry", "status", "valid fonts"):
            entries.add_column(column)
        for entry, count in catalog.found.items():
            status = "[green]found[/]" if count else "[yellow]missing[/]"
            entries.add_row(entry, status, str(count))
        console.print(entries)
        rejected = Table(title="Rejected font files")
        rejected.add_column("file")
        rejected.add_column("reason")
        for rejection in catalog.rejected:
            rejected.add_row(rejection.path, rejection.reason)
        console.print(rejected)
    else:
        table = Table(title=f"{len(catalog.valid)} valid fonts")
        for column in ("family", "style", "file", "licence"):
            table.add_column(column)
        for font in catalog.valid:
            table.add_row(font.family, font.style, font.path, font.license_url or font.license)
        console.print(table)
    families = {f.family for f in catalog.valid}
    console.print(
        f"{len(catalog.valid)} valid fonts in {len(families)} families, "
        f"{len(catalog.rejected)} rejected, {len(catalog.missing)} list entries missing"
    )
    if write is not None:
        lines = ["# Valid fonts found by `textimg fonts --write`; usable as `--fonts FILE`."]
        lines += [font.path for font in catalog.valid]
        write_text_atomic(write, "\n".join(lines) + "\n")
        console.print(f"wrote {write}")


def _drawable(
    numbered: dict[int, str],
    fonts: tuple[FontInfo, ...],
    text_file: Path | None,
    text_from: Path | None,
) -> tuple[tuple[str, ...] | None, tuple[FontInfo, ...], tuple[RejectedText, ...]]:
    """The texts synth draws, the fonts it draws them with and the lines left out: lines no font
    can draw a character of are left out, fonts that can draw no line are not drawn with."""
    from textimg.data.drawable import drawable_corpus

    if not numbered:
        return None, fonts, ()
    source = f"--text-file {text_file}" if text_file else f"the transcripts of {text_from}"
    drawable = drawable_corpus(numbered, fonts, source)
    return drawable.texts, drawable.fonts, drawable.rejected


@app.command()
def synth(
    out: Annotated[Path, out_option("Output folder for the shards.")],
    n: Annotated[int, typer.Option("--n", help="Number of images in the corpus.")] = 407_000,
    seed: Annotated[int, seed_option("Corpus seed: sample i depends only on (seed, i).")] = 0,
    size: Annotated[int, typer.Option(help="Side of the square images, in pixels.")] = 256,
    shard_size: Annotated[int, typer.Option(help="Samples per shard.")] = 1000,
    max_lines: Annotated[int, typer.Option(help="Most lines of text in one image.")] = 5,
    min_font_px: Annotated[
        int | None, typer.Option(help="Smallest font size in px. Default: 14% of --size.")
    ] = None,
    max_font_px: Annotated[
        int | None, typer.Option(help="Largest font size in px. Default: 40% of --size.")
    ] = None,
    min_contrast: Annotated[
        int, typer.Option(help="Least gray-level difference between text and background (1-255).")
    ] = 96,
    placement: Annotated[
        PlacementName,
        typer.Option(
            parser=one_of("--placement", PLACEMENTS),
            help="Where the text block sits: 'random' (anywhere it fits, the post's corpus) or "
            "'center' (always in the middle, so a model has no position to learn).",
        ),
    ] = "random",
    text_file: Annotated[
        Path | None,
        typer.Option(
            parser=user_path,
            help="Your texts: one a line, a literal \\n marks a line break. "
            "Default: embedded English text by word frequency.",
        ),
    ] = None,
    text_from: Annotated[
        Path | None,
        typer.Option(
            parser=user_path,
            help="Draw texts from the train transcripts of a `textimg pack` output folder, "
            "so the synthetic corpus speaks the real data's language.",
        ),
    ] = None,
    workers: WorkersOption = 0,
    shards: Annotated[
        str | None,
        typer.Option(
            help="Render only shards A..B-1 (e.g. 0:100), to split a corpus across machines; "
            "then run `textimg merge OUT`."
        ),
    ] = None,
    font_list: FontListOption = None,
    font_dirs: FontDirOption = None,
    all_fonts: AllFontsOption = False,
    no_system_fonts: NoSystemOption = False,
) -> None:
    """Render the synthetic corpus: grayscale text in random fonts on flat backgrounds, as shards.

    Deterministic (same seed, same bytes, whatever --workers), resumable (a rerun skips complete
    shards; Ctrl-C or SIGTERM records what finished), and splittable across machines with --shards.
    Every option is checked before the fonts, whose checks are cached between runs.
    """
    from dataclasses import asdict, replace

    from textimg.data.shard_job import default_workers
    from textimg.data.synth import (
        RenderContext,
        SynthConfig,
        check_output,
        font_fingerprint,
        parse_shard_range,
        run_synth,
        text_fingerprint,
    )
    from textimg.output_owner import hold_output

    _check_font_options(font_list, font_dirs)
    numbered = _text_corpus(text_file, text_from)
    corpus = tuple(numbered.values()) if numbered else None
    config = SynthConfig(
        n=n,
        seed=seed,
        size=size,
        shard_size=shard_size,
        max_lines=max_lines,
        min_font_px=min_font_px,
        max_font_px=max_font_px,
        min_contrast=min_contrast,
        placement=placement,
        text_file=str(text_file or text_from) if corpus else None,
        text_sha256=text_fingerprint(corpus) if corpus else None,
    )
    config.check()
    shard_range = parse_shard_range(shards, config.num_shards)
    check_output(out, asdict(config), ignore=("fonts",))
    font_set = _synth_fonts(font_list, font_dirs, all_fonts, no_system_fonts)
    corpus, font_set, rejected = _drawable(numbered, font_set, text_file, text_from)
    config = replace(config, fonts=font_fingerprint(font_set))
    workers = workers or default_workers()
    context = RenderContext(config=config, fonts=font_set, corpus=corpus)
    started = time.perf_counter()
    with (
        hold_output(out),
        _synth_progress(config.n, config.shard_size, shard_range, started) as advance,
    ):
        report = run_synth(context, out, workers, shard_range, advance, rejected)
    console.print(_synth_summary(report, time.perf_counter() - started, len(font_set), workers))


def _text_corpus(text_file: Path | None, text_from: Path | None) -> dict[int, str] | None:
    """The texts synth draws from by line number: a text file, a pack's train transcripts, or
    None (the embedded English)."""
    from textimg.data.texts import load_text_file

    if text_file and text_from:
        raise TextimgError("give --text-file or --text-from, not both")
    if text_file:
        return load_text_file(text_file)
    if not text_from:
        return None
    from textimg.data.pack import load_packed_texts

    corpus = load_packed_texts(text_from)
    if not corpus:
        raise TextimgError(f"{text_from} has no non-empty transcripts to draw texts from")
    return dict(enumerate(corpus, 1))


def _synth_fonts(
    font_list: Path | None, font_dirs: list[Path] | None, all_fonts: bool, no_system: bool
) -> tuple[FontInfo, ...]:
    """The fonts synth renders with; refuses a `--fonts` list naming a font that is not found."""
    catalog = _catalog(font_list, font_dirs, all_fonts, no_system)
    if font_list is not None and catalog.missing:  # the user named these fonts explicitly
        raise TextimgError(
            f"no usable font for --fonts entries: {', '.join(catalog.missing[:5])} "
            f"(see `textimg fonts --check --fonts {font_list}`)"
        )
    return tuple(catalog.valid)


@contextmanager
def _synth_progress(
    n: int, shard_size: int, shard_range: tuple[int, int], started: float
) -> Iterator[OnShard]:
    """A bar of the images in the shard range with the rate so far; yields the shard job's
    callback."""
    first, stop = shard_range
    total = min(n, stop * shard_size) - first * shard_size
    with Progress(
        TextColumn("[bold]synth"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("synth", total=total, rate="")

        def advance(shard: ShardDone) -> None:
            progress.advance(task, shard.entry["samples"])
            done = progress.tasks[0].completed
            rate = done / max(time.perf_counter() - started, 1e-9)
            progress.update(task, rate=f"{rate:,.0f} img/s")

        yield advance


def _synth_summary(report: SynthReport, elapsed: float, fonts: int, workers: int) -> Table:
    """The end-of-run table: what the range holds, what this run rendered, and how fast."""
    rendered_samples = sum(r.info.samples for r in report.rendered)
    families = {f for r in report.rendered for f in r.families}
    table = Table(title="textimg synth")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("images in range", f"{report.total_samples:,}")
    table.add_row("shards rendered / skipped", f"{len(report.rendered)} / {len(report.skipped)}")
    table.add_row("bytes on disk", f"{report.total_bytes:,}")
    table.add_row("bytes per image", f"{report.total_bytes / max(report.total_samples, 1):,.0f}")
    table.add_row("fonts available / families used", f"{fonts} / {len(families)}")
    table.add_row("texts cut to fit", f"{sum(r.dropped for r in report.rendered):,}")
    table.add_row("throughput", f"{rendered_samples / max(elapsed, 1e-9):,.0f} img/s")
    table.add_row("workers", str(workers))
    table.add_row("manifest", str(report.manifest_path))
    return table


@app.command()
def merge(
    corpus_dir: Annotated[
        Path,
        typer.Argument(parser=user_path, help="Corpus folder holding the manifest-A-B.json parts."),
    ],
) -> None:
    """Merge the part manifests of a corpus rendered in pieces (--shards) into manifest.json."""
    from textimg.data.synth import merge_manifests

    merged, missing = merge_manifests(corpus_dir)
    console.print(
        f"manifest.json: {len(merged['shards'])} of {merged['num_shards']} shards recorded"
    )
    if missing:
        raise TextimgError(
            f"{len(missing)} shards are missing (first: {missing[0]}): rerun their ranges"
        )


@app.command()
def preview(
    shards: Annotated[
        list[Path],
        typer.Argument(parser=user_path, help="Shard files, folders of shards, or globs."),
    ],
    out: Annotated[Path, out_option("Where to write the contact sheet (.png).")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many samples to show.")] = 64,
    columns: Annotated[int, typer.Option(min=1, max=64, help="Images per row.")] = 8,
    cell: Annotated[
        int, typer.Option(min=8, max=1024, help="Size of each image on the sheet, in px.")
    ] = 128,
    overwrite: OverwriteOption = False,
) -> None:
    """Write a contact sheet of samples with their texts under them, from any textimg shards."""
    from textimg.data.shards import preview_samples
    from textimg.files import check_output_file, write_atomic
    from textimg.images import contact_sheet

    if out.suffix.lower() != ".png":
        raise TextimgError(f"--out {out}: the contact sheet is a .png file")
    check_output_file(out, overwrite)
    items, skipped = preview_samples(shards, n)
    for sample in skipped:
        console.print(f"skipped {sample.shard} sample {sample.key}: {sample.reason}")
    if not items:
        raise TextimgError("no readable images found in those shards")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(items, columns=columns, cell=cell)
    write_atomic(out, lambda temp: sheet.save(temp, format="PNG"))
    console.print(f"wrote {out} ({len(items)} samples)")


@app.command()
def demo(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", parser=user_path, help="Folder for everything the demo writes."
        ),
    ] = Path("demo"),
    seed: Annotated[int, seed_option("Seed of the texts, corpus, weights and samples.")] = 0,
    task: Annotated[
        DemoTaskName,
        typer.Option(
            parser=one_of("--task", DEMO_TASKS),
            help="What the model learns to write: letters (3-letter lowercase strings) or "
            "digits (2-3 digit strings); each under 10 minutes on 2 cores.",
        ),
    ] = "letters",
) -> None:
    """Train a model that writes, in under 10 minutes on 2 CPU cores, and score it by OCR.

    Renders 3-letter strings (or digit strings), trains its recipe on them, samples prompts never
    rendered for training and reads them back; prints the scores beside chance and the
    clean-render ceiling.
    """
    from textimg.cli.progress import train_progress
    from textimg.demo import TASKS, run_demo

    result = run_demo(
        out,
        seed=seed,
        task=TASKS[task],
        log=lambda line: console.print(line, markup=False, soft_wrap=True),
        report=train_progress,
    )
    console.print(f"[bold]demo done[/] in {result['total_seconds'] / 60:.1f} min")
    for role, path in result["paths"].items():
        console.print(f"  {role:18s} {path}", markup=False, highlight=False)
