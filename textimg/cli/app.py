"""The Typer app object that every command module registers on."""

import click
import typer
from typer.core import TyperGroup

from textimg.errors import TextimgError


class _FriendlyErrors(TyperGroup):
    """Turns a `TextimgError` raised by any command into Click's one-line `Error: ...` exit."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except TextimgError as error:
            raise click.ClickException(str(error)) from None


app = typer.Typer(
    name="textimg",
    cls=_FriendlyErrors,
    help="Train and judge diffusion models that write arbitrary text into images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
