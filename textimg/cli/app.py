"""The Typer app object that every command module registers on."""

import typer

app = typer.Typer(
    name="textimg",
    help="Train and judge diffusion models that write arbitrary text into images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
