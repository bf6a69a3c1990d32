"""The Typer app object that every command module registers on."""

import typer
from rich.console import Console
from typer.core import TyperGroup

from textimg.errors import TextimgError


class _FriendlyErrors(TyperGroup):
    """Turns a `TextimgError` raised by any command into one `Error: ...` line and exit status 1."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except TextimgError as error:
            Console(stderr=True).print(f"[bold red]Error:[/] {error}", highlight=False)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="textimg",
    cls=_FriendlyErrors,
    help="Train and judge diffusion models that write arbitrary text into images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
