"""The `textimg` command line: thin Typer commands that call library functions.

Each module below registers its commands on the shared `app` when imported. Heavy libraries (torch,
easyocr) are imported inside the commands so that `textimg --help` stays instant.
"""

import sys

from rich.console import Console

from textimg.cli import data_commands  # noqa: F401  (registers fonts, synth, preview, demo)
from textimg.cli.app import app
from textimg.errors import TextimgError


def main() -> None:
    """Run the CLI; a `TextimgError` becomes one `error: ...` line and exit status 2."""
    try:
        app()
    except TextimgError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(2)


__all__ = ["app", "main"]
