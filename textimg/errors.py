"""The one exception type that the CLI turns into a single clear error line."""

from __future__ import annotations

from collections.abc import Iterable


class TextimgError(Exception):
    """Bad input or a refused operation: the message is shown to the user as it is, no traceback."""


class TextimgWarning(UserWarning):
    """Something a user should know but that does not stop the command (a prompt cut to the
    model's text length, characters the vocabulary lacks): the CLI prints it as one `Warning:`
    line, without the source location Python's default format adds."""


def check_choice(name: str, value: object, choices: Iterable[str]) -> None:
    """Refuse a setting outside its allowed values, naming them all (one wording everywhere)."""
    choices = tuple(choices)
    if value not in choices:
        raise TextimgError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
