"""The Typer app object that every command module registers on."""

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from textimg.errors import TextimgError
from textimg.interrupt import exit_status, signal_name, signals_interrupt


class _FriendlyErrors(TyperGroup):
    """Turns a `TextimgError` raised by any command into one `Error: ...` line and exit status 1,
    and Ctrl-C or SIGTERM into one `Stopped by ...` line (what was kept, when the command says)
    and exit status 130 or 143."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            with signals_interrupt():
                return super().invoke(ctx)
        except TextimgError as error:
            Console(stderr=True).print(f"[bold red]Error:[/] {error}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt as stop:
            kept = f": {escape(str(stop))}" if str(stop) else ""
            line = f"[bold yellow]Stopped by {signal_name()}[/]{kept}"
            Console(stderr=True).print(line, highlight=False, soft_wrap=True)
            raise typer.Exit(exit_status()) from None


app = typer.Typer(
    name="textimg",
    cls=_FriendlyErrors,
    help="Train and judge diffusion models that write arbitrary text into images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
