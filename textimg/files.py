"""Atomic file writes: every file textimg writes appears whole under its final name or not at all.

A killed run (Ctrl-C, out of memory, a pre-empted node) must never leave half a shard, checkpoint
or table under the name a later run trusts, so each writer fills `NAME.tmp` beside the target and
renames it over `NAME` (atomic on POSIX) once the content is complete. `user_cache_dir` names
the one folder where textimg keeps results it can always recompute.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from textimg.errors import TextimgError

TEMP_SUFFIX = ".tmp"
LOCK_NAME = ".textimg.lock"
CACHE_DIR_ENV = "TEXTIMG_CACHE_DIR"


def user_cache_dir() -> Path:
    """Where textimg keeps what it can always recompute (font checks, OCR readings):
    `$TEXTIMG_CACHE_DIR`, else `textimg` under `$XDG_CACHE_HOME` or `~/.cache`."""
    root = os.environ.get(CACHE_DIR_ENV)
    if root:
        folder = Path(root).expanduser()
        if folder.exists() and not folder.is_dir():
            raise TextimgError(
                f"{CACHE_DIR_ENV}={root} is a file, not a folder: point it at a folder "
                "(it is created when missing) or unset it"
            )
        return folder
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "textimg"


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


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists: where a new file or folder would be made."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_creatable(path: Path) -> None:
    """Refuse `path` when what would hold it is a file or a folder this user cannot write."""
    holder = _nearest_existing(path.parent)
    if not holder.is_dir():
        raise TextimgError(f"cannot write {path}: {holder} is a file, not a folder")
    if not os.access(holder, os.W_OK | os.X_OK):
        raise TextimgError(f"cannot write {path}: no permission to write in {holder}")


def check_output_dir(path: Path) -> Path:
    """Refuse an output folder that cannot be written, before any work is done for it.

    A file in its place, a file among its parents or a read-only folder would otherwise surface
    as a traceback at the first write, after the minutes of work whose results it was to hold.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise TextimgError(f"{path} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise TextimgError(f"cannot write in {path}: permission denied")
        return path
    _check_creatable(path)
    return path


def check_output_file(path: Path, overwrite: bool = False) -> Path:
    """Refuse an output file that cannot be written, or that exists unless `overwrite`: a user's
    file is never replaced by accident."""
    path = Path(path)
    if path.is_dir():
        raise TextimgError(f"{path} is a folder, not a file")
    if path.exists():
        if not overwrite:
            raise TextimgError(f"{path} exists; pass --overwrite to replace it")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise TextimgError(f"cannot write {path}: no permission to write in {path.parent}")
        return path
    _check_creatable(path)
    return path


def _holder(handle) -> str:  # type: ignore[no-untyped-def]
    handle.seek(0)
    return handle.read().strip() or "another process"


@contextmanager
def hold_folder(folder: Path | str) -> Iterator[None]:
    """Hold `folder` for this process while it writes there; a second writer is refused at once.

    Two runs writing one folder interleave their logs and replace each other's files, and both
    exit 0. The lock is an advisory `flock` on `FOLDER/.textimg.lock`, which the kernel releases
    when its process dies however it dies, so a killed run never leaves the folder locked; the
    file names the holder (pid, host, command line) for the second writer's error, and is
    removed when the holder is done, with the folder itself if this call made it and nothing
    was written there. Under torchrun only rank 0 should call this.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    while True:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (held until the block ends)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise TextimgError(
                f"{folder} is being written by {holder}; wait for it to finish or stop it, "
                "or write somewhere else"
            ) from None
        try:
            same_file = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:  # not a lock file that its holder removed as we opened it
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    command = " ".join(["textimg", *sys.argv[1:]])
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} ({command})\n")
    handle.flush()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()
        if created and not any(folder.iterdir()):
            folder.rmdir()  # a command refused before it wrote anything leaves no folder behind
