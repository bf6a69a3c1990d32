"""Ctrl-C and SIGTERM stop a long command the same way, after it records what it finished.

Python turns SIGINT into `KeyboardInterrupt`; `signals_interrupt` makes SIGTERM (what `kill`,
job schedulers and container runtimes send) raise it too, so each command has one
`except KeyboardInterrupt` path for both. A command that recorded its progress raises
`Interrupted` with one line saying what it kept; the CLI prints that line and exits with
128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM), the status a shell reports for a
process the signal ended. `deferred` holds a signal back while a few statements must not be cut
in half (an optimizer update), and raises it as soon as they are done.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM after recording what it finished; the message is the
    one line that says what was kept and that the same command resumes."""


class _State:
    """What the handler knows: who installed it, what it replaced, what arrived, whether to wait."""

    owner_pid = 0
    previous: dict[int, Any] = {}
    received: int | None = None
    deferring = 0
    pending = False


def _handle(number: int, frame: FrameType | None) -> None:
    if os.getpid() != _State.owner_pid:
        # A forked worker (a DataLoader's) inherited this handler: behave as it did before.
        previous = _State.previous.get(number, signal.SIG_DFL)
        if callable(previous):
            previous(number, frame)
            return
        signal.signal(number, previous)
        os.kill(os.getpid(), number)
        return
    _State.received = number
    if _State.deferring:
        _State.pending = True
        return
    raise KeyboardInterrupt


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM both raise `KeyboardInterrupt` in the main thread.

    Nests (the CLI and `train` both enter it); outside the main thread, where Python cannot set
    handlers and no signal is delivered, it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = (_State.owner_pid, dict(_State.previous))
    previous = {number: signal.signal(number, _handle) for number in STOP_SIGNALS}
    if saved[0] != os.getpid():
        _State.owner_pid, _State.previous = os.getpid(), previous
        _State.received, _State.pending = None, False
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _State.owner_pid, _State.previous = saved


@contextmanager
def deferred() -> Iterator[None]:
    """A stop signal arriving inside the block is raised when the block ends, not in its middle.

    Only signals handled by `signals_interrupt` wait; an error inside the block still goes first.
    """
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
        pending = _State.pending and not _State.deferring
        if pending:
            _State.pending = False  # raised below, or moot when an error already stops the run
    if pending:
        raise KeyboardInterrupt


def exit_status() -> int:
    """The exit status after a stop signal: 128 + its number (SIGINT when none was seen)."""
    return 128 + (_State.received or signal.SIGINT)


def signal_name() -> str:
    """How the user stopped the run, for the one line the CLI prints."""
    return "SIGTERM" if _State.received == signal.SIGTERM else "Ctrl-C"
