"""Atomic file writes: every file textimg writes appears whole under its final name or not at all.

A killed run (Ctrl-C, out of memory, a pre-empted node) must never leave half a shard, checkpoint
or table under the name a later run trusts, so each writer fills `NAME.tmp` beside the target and
renames it over `NAME` (atomic on POSIX) once the content is complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` only if the block finishes."""
    path = Path(path)
    temp = path.with_name(path.name + TEMP_SUFFIX)
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path | str, write: Callable[[Path], object]) -> None:
    """Call `write(temp_path)`, then rename the finished file over `path`."""
    with atomic_path(path) as temp:
        write(temp)


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write UTF-8 `text` atomically."""
    write_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))
