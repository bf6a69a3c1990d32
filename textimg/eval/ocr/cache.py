"""The reading cache: transcripts on disk by image pixels and engine description (sqlite).

An engine's description (name, version, pipeline revision, settings) is part of every key, so a
reading is reused only by the very engine and settings that made it, and scoring the same images
twice costs nothing. The cache only saves time, so `open_cache` never lets it stop a command: a
corrupt file is set aside and rebuilt, a folder that cannot be written means reading without it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from textimg.errors import TextimgWarning
from textimg.files import user_cache_dir

SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")
"""Files sqlite keeps beside a database; they move with it, or a new file would replay them."""


def image_digest(image: Image.Image) -> str:
    """sha256 of decoded RGB pixels and size: a picture hashes alike as PNG or in memory."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def default_cache_path() -> Path:
    """`ocr.sqlite` in textimg's cache folder (`textimg.files.user_cache_dir`)."""
    return user_cache_dir() / "ocr.sqlite"


class OcrCache:
    """An on-disk map (image digest, engine description) -> transcript, in one sqlite file.

    sqlite because several processes (torchrun ranks, parallel score runs) may share one cache and
    it does the locking; one row per reading so an interrupted run keeps what it finished.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(self.path.parent, os.W_OK):
            raise PermissionError(f"Permission denied: {self.path.parent}")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        # quick_check reads every page (milliseconds for a 40 MB cache): a truncated file fails
        # here, once, instead of in the middle of a run.
        problems = self._db.execute("PRAGMA quick_check").fetchall()
        if problems != [("ok",)]:
            raise sqlite3.DatabaseError(f"database disk image is malformed: {problems[0][0]}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS readings (digest TEXT, engine TEXT, text TEXT, "
            "PRIMARY KEY (digest, engine))"
        )
        self._db.commit()

    def get_many(self, digests: Sequence[str], engine: str) -> dict[str, str]:
        """The cached transcripts among `digests` for this engine description."""
        found: dict[str, str] = {}
        with self._lock:
            for digest in set(digests):
                row = self._db.execute(
                    "SELECT text FROM readings WHERE digest = ? AND engine = ?", (digest, engine)
                ).fetchone()
                if row is not None:
                    found[digest] = row[0]
        return found

    def put_many(self, readings: dict[str, str], engine: str) -> None:
        """Store transcripts by digest for this engine description."""
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO readings VALUES (?, ?, ?)",
                [(digest, engine, text) for digest, text in readings.items()],
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]


def set_aside(path: Path) -> Path:
    """Rename `path` (and sqlite's files beside it) to the first free `NAME.corrupt-N`."""
    for number in itertools.count(1):
        aside = path.with_name(f"{path.name}.corrupt-{number}")
        if not aside.exists():
            break
    for side in ("", *SQLITE_SIDE_FILES):
        source = path.with_name(path.name + side)
        if source.exists():
            os.replace(source, aside.with_name(aside.name + side))
    return aside


def open_cache(path: Path | str) -> OcrCache | None:
    """The reading cache at `path`, for every command that reads images.

    A file sqlite cannot read (corrupt, truncated, not a database) is set aside and a new cache
    started; a cache folder that cannot be written (a read-only home) gives None, so the command
    reads every image again. Either way one warning line says so and the command goes on.
    """
    path = Path(path)
    try:
        try:
            return OcrCache(path)
        except sqlite3.OperationalError:
            raise  # locked, read-only, cannot open: not the file's content
        except sqlite3.DatabaseError as error:
            aside = set_aside(path)
            warnings.warn(
                f"the OCR cache {path} is unreadable ({error}): set aside as {aside.name}, "
                "starting a new one",
                TextimgWarning,
                stacklevel=2,
            )
            return OcrCache(path)
    except (OSError, sqlite3.Error) as error:
        warnings.warn(
            f"the OCR cache {path} cannot be written ({error}): reading without it; pass "
            "--no-cache to say so, or --cache-dir a writable folder to keep readings",
            TextimgWarning,
            stacklevel=2,
        )
        return None
