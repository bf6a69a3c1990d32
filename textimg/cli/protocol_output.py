"""What `score --protocol` prints: the list of protocols (`--protocol` alone), and a protocol
run's own aggregate beside its clean-rendering ceiling, by target length."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand

LIST_WORD = "list"
"""`--protocol list`: the spelling of the listing that shells and scripts can pass as a value."""


def wants_protocol_list(args: Sequence[str]) -> bool:
    """`--protocol` given without a value (last, or followed by another option), or as `list`."""
    for index, arg in enumerate(args):
        if arg == f"--protocol={LIST_WORD}":
            return True
        if arg == "--protocol":
            following = args[index + 1] if index + 1 < len(args) else None
            return following is None or following.startswith("-") or following == LIST_WORD
    return False


def print_protocol_list() -> None:
    """Every protocol: its name, benchmark, metrics, official OCR engine and official code."""
    from textimg.eval.protocols import all_protocols

    console = Console(highlight=False, soft_wrap=True)
    for protocol in all_protocols():
        console.print(f"[bold]{protocol.name}[/bold]  {protocol.title}")
        console.print(f"  metrics: {', '.join(protocol.metrics)}", markup=False)
        console.print(f"  official engine: {protocol.official_engine}", markup=False)
        console.print(f"  official code: {protocol.official_code}", markup=False)
    console.print("score with: textimg score IMAGES --prompts FILE --protocol NAME --out DIR")


class ScoreCommand(TyperCommand):
    """`score`, where `--protocol` alone lists the protocols: Click has no option whose value may
    be left out, so the listing is answered before the arguments are parsed (and before IMAGES
    and --out are required)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if wants_protocol_list(args):
            print_protocol_list()
            ctx.exit(0)
        return super().parse_args(ctx, args)


def print_protocol_summary(summary: dict[str, Any], out: Path) -> None:
    """The benchmark's aggregate (beside the ceiling where measured), then each length table."""
    protocol, ceiling = summary["protocol"], summary.get("ceiling")
    console = Console()
    title = f"{protocol['title']} (protocol {protocol['name']} v{protocol['version']})"
    table = Table("metric", "score", *(["ceiling"] if ceiling else []), title=title)
    for name, value in summary["aggregate"].items():
        cells = [value] + ([ceiling["aggregate"].get(name)] if ceiling else [])
        table.add_row(name, *(number_cell(v) for v in cells))
    console.print(table)
    for measure, buckets in (ceiling or {}).get("by_length", {}).items():
        names = protocol["metrics"]
        view = Table(measure, "images", *(f"{n} / ceiling" for n in names), title=f"by {measure}")
        for bucket, cell in buckets.items():
            pairs = [
                f"{number_cell(cell['score'].get(n))} / {number_cell(cell['ceiling'].get(n))}"
                for n in names
            ]
            view.add_row(bucket, str(cell["images"]), *pairs)
        console.print(view)
    counts, reader = summary["counts"], summary["ocr"]
    console.print(
        f"scored {counts['scored']:,} of {counts['rows']:,} rows with {reader['engine']}; "
        f"report: {out / 'report.html'}",
        highlight=False,
        soft_wrap=True,
    )


def number_cell(value: float | None) -> str:
    """A number for people to read: three decimals, or a dash where there is none."""
    return "–" if value is None else f"{value:.3f}"
