"""Tesseract through its CLI, where it is installed: a second opinion for cross-checking."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Sequence

from PIL import Image

from textimg.errors import TextimgError
from textimg.eval.ocr.base import Detection, OcrEngine, OcrSettings
from textimg.eval.ocr.cache import OcrCache


class TesseractEngine(OcrEngine):
    """Tesseract (Debian `tesseract-ocr`) through its CLI: a second opinion for cross-checking.

    Word boxes and confidences come from its TSV output and go through the same line grouping and
    filters as EasyOCR's, so both engines' transcripts are built alike.
    """

    name = "tesseract"
    page_segmentation = 11
    """Sparse text: generated images put text anywhere, not in a page layout."""

    def __init__(self, settings: OcrSettings, cache: OcrCache | None = None) -> None:
        super().__init__(settings, cache)
        self.binary = shutil.which("tesseract")
        if self.binary is None:
            raise TextimgError("tesseract is not installed (Debian: apt-get install tesseract-ocr)")

    @property
    def version(self) -> str:
        output = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return (output.stdout or output.stderr).splitlines()[0].strip()

    def _read(self, images: Sequence[Image.Image]) -> list[str]:
        return [self._read_one(image) for image in images]

    def _read_one(self, image: Image.Image) -> str:
        array, factor = self._prepare(image)
        png = io.BytesIO()
        Image.fromarray(array).save(png, format="PNG")
        result = subprocess.run(
            [self.binary, "stdin", "stdout", "--psm", str(self.page_segmentation), "tsv"],
            input=png.getvalue(),
            capture_output=True,
            check=True,
        )
        detections = []
        for row in result.stdout.decode("utf-8", "replace").splitlines()[1:]:
            fields = row.split("\t")
            if len(fields) < 12 or fields[0] != "5" or not fields[11].strip():
                continue
            left, top, width, height = (int(v) / factor for v in fields[6:10])
            confidence = max(float(fields[10]), 0.0) / 100
            detections.append(
                Detection(fields[11], confidence, (left, top, left + width, top + height))
            )
        return self._transcript(detections, image.size)
