"""OCR engines other packages register, without forking textimg.

A package declares a factory under the entry-point group `textimg.ocr_engines` (choices.py names
it); the factory is called once with no argument and returns an object with
`read(images) -> list[str]` (PIL RGB images in, one transcript each, lines joined by "\\n") and,
optionally, a `version` string. `RegisteredEngine` puts it behind `OcrEngine`, so it gets the
on-disk cache, `describe()` in summary.json and every command's `--engine`. Images reach it at
their own size: upscaling and line grouping are the reader's own business.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from PIL import Image

from textimg.choices import ENGINE_ENTRY_POINTS
from textimg.errors import TextimgError
from textimg.eval.ocr.base import OcrEngine, OcrSettings
from textimg.eval.ocr.cache import OcrCache


def engine_entry_point(name: str) -> EntryPoint:
    """The entry point registering engine `name`."""
    for entry_point in entry_points(group=ENGINE_ENTRY_POINTS):
        if entry_point.name == name:
            return entry_point
    raise TextimgError(f"no OCR engine {name!r} is registered under {ENGINE_ENTRY_POINTS}")


class RegisteredEngine(OcrEngine):
    """An engine a package registered: its reader's `read`, behind textimg's cache and record."""

    def __init__(self, settings: OcrSettings, cache: OcrCache | None = None) -> None:
        super().__init__(settings, cache)
        self.entry_point = engine_entry_point(settings.engine)
        self.name = settings.engine
        self.reader: Any = self.entry_point.load()()
        if not callable(getattr(self.reader, "read", None)):
            raise TextimgError(
                f"OCR engine {self.name!r} ({self.entry_point.value}) returned an object without "
                "read(images) -> list[str]"
            )

    @property
    def version(self) -> str:
        """The reader's own `version`, else its distribution's name and version."""
        own = getattr(self.reader, "version", None)
        if isinstance(own, str) and own:
            return own
        dist = self.entry_point.dist
        package = f"{dist.name} {dist.version}" if dist is not None else "unknown package"
        return f"{package} ({self.entry_point.value})"

    def _read(self, images: Sequence[Image.Image]) -> list[str]:
        transcripts = list(self.reader.read([image.convert("RGB") for image in images]))
        if len(transcripts) != len(images) or not all(isinstance(t, str) for t in transcripts):
            raise TextimgError(
                f"OCR engine {self.name!r} must return one str per image: got "
                f"{len(transcripts)} values for {len(images)} images"
            )
        return transcripts
