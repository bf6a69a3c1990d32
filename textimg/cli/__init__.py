"""The `textimg` command line: thin Typer commands that call library functions.

Each module below registers its commands on the shared `app` when imported. Heavy libraries (torch,
easyocr) are imported inside the commands so that `textimg --help` stays instant. A `TextimgError`
raised anywhere becomes one `Error: ...` line and exit status 1, never a traceback.
"""

from textimg.cli import (
    data_commands,  # noqa: F401  (each import registers its module's commands)
    eval_commands,  # noqa: F401  (registers score, transcribe, eval)
    pack_commands,  # noqa: F401
    train_commands,  # noqa: F401  (registers train, sample, export)
)
from textimg.cli.app import app


def main() -> None:
    """Entry point of the `textimg` console script."""
    app()


__all__ = ["app", "main"]
