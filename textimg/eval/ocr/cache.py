"""The reading cache: transcripts on disk by image pixels and engine description (sqlite).

An engine's description (name, version, pipeline revision, settings) is part of every key, so a
reading is reused only by the very engine and settings that made it, and scoring the same images
twice costs nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from textimg.files import user_cache_dir


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
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
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
