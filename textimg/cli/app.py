"""The Typer app object that every command module registers on, and its one error handler."""

import errno
import os
import warnings

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from textimg.errors import TextimgError, TextimgWarning
from textimg.interrupt import exit_status, signal_name, signals_interrupt


def _error_line(message: str, status: int) -> typer.Exit:
    """Print `Error: message` on stderr as one line; the exit to raise with `status`."""
    Console(stderr=True).print(
        f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True
    )
    return typer.Exit(status)


def _show_warning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    """textimg's own warnings as one `Warning:` line on stderr; others in Python's format."""
    if issubclass(category, TextimgWarning):
        Console(stderr=True).print(
            f"[bold yellow]Warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True
        )
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def os_error_message(error: OSError) -> str:
    """An operating-system failure as one sentence: what failed, on which path, and for a full
    disk what to do about it."""
    paths = [os.fspath(name) for name in (error.filename, error.filename2) if name is not None]
    where = f" ({' -> '.join(map(str, paths))})" if paths else ""
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"{reason}{where}: free some space or write somewhere else"
    return f"{reason}{where}"


class _FriendlyErrors(TyperGroup):
    """Turns a `TextimgError` or an operating-system error (permission, not a folder, disk full)
    raised by any command, and a bad option, into one `Error: ...` line and a non-zero exit (2
    for a bad option, as Click's), and Ctrl-C or SIGTERM into one `Stopped by ...` line (what was
    kept, when the command says) and exit status 130 or 143."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            with signals_interrupt(), warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except TextimgError as error:
            raise _error_line(str(error), 1) from None
        except NoArgsIsHelpError:
            raise
        except UsageError as error:
            message = error.format_message().replace("Value error, ", "")
            command = error.ctx.command_path if error.ctx is not None else ctx.command_path
            raise _error_line(f"{message} (see {command} --help)", error.exit_code) from None
        except OSError as error:
            if error.errno == errno.EPIPE:  # output piped into `head`: Typer exits quietly
                raise
            raise _error_line(os_error_message(error), 1) from None
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
