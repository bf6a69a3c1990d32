"""What every OCR engine shares: its settings, the line grouping, the original's filters, and
`OcrEngine.read(images) -> list[str]` with the reading cache in front of each engine's own `_read`.

Every engine stands in for the AWS Rekognition `DetectText` the post used (nostalgebraist.md §2),
so a transcript is built the way Rekognition's LINE output reads: detections grouped into lines top
to bottom, left to right within a line, lines joined by `\\n`. The original's filters are options: a
confidence threshold and the corner rule (drop a line within 5% of a left/right edge *and* within 5%
of a top/bottom edge, `image_analysis.py:L205-243`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from textimg.choices import DEFAULT_ENGINE, ENGINES
from textimg.errors import TextimgError
from textimg.eval.ocr.cache import OcrCache, image_digest

AUTO_UPSCALE_BELOW = 256
"""Images whose longer side is below this are read at 2x (the `upscale=0` default), by every engine.

Measured on clean 64 and 128 px renders (docs/eval.md, `benchmarks/ocr.py --sweep-upscale`):
2x reads best at both sizes; 3x is no better and 4x is worse, while detection cost grows with
the square of the factor. EasyOCR's detector drops boxes of 20 px or less, which is why small
images need enlarging at all (EasyOCR #663, #1078). RapidOCR reads 1x and 2x about alike
(`benchmarks/ocr.py --sweep`, docs/eval.md); one rule for every engine keeps them comparable.
"""


PIPELINE_REVISION = 2
"""Bumped whenever textimg's own reading pipeline changes (preprocessing, batching, line
grouping), so cached transcripts from an older pipeline are never reused."""


@dataclass(frozen=True)
class OcrSettings:
    """Everything that changes a transcript; it is recorded with every score and keys the cache."""

    engine: str = DEFAULT_ENGINE
    upscale: int = 0
    """Integer enlargement before reading; 0 means 2x below `AUTO_UPSCALE_BELOW` px, else 1x."""
    min_confidence: float = 0.0
    """Drop detections below this confidence (0-1; Rekognition's 65 or 80 are on a 0-100 scale)."""
    corner_margin: float = 0.0
    """The original's corner rule with this margin (the post used 0.05); 0 keeps every line."""
    precision: str = "auto"
    """Detector precision: "bf16" on CPUs with native bfloat16 when "auto", else "fp32"."""
    batch_size: int = 16
    """Images per detector pass, and crops per recognizer pass."""

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise TextimgError(f"unknown OCR engine {self.engine!r}; choose one of {ENGINES}")
        if self.upscale < 0 or self.batch_size < 1:
            raise TextimgError("OCR upscale must be >= 0 and batch size >= 1")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise TextimgError(f"unknown OCR precision {self.precision!r}; use auto, bf16 or fp32")
        if not 0 <= self.corner_margin < 0.5:
            raise TextimgError("the corner margin is a fraction of the image side, in [0, 0.5)")

    def upscale_for(self, size: tuple[int, int]) -> int:
        """The enlargement factor used for an image of `size` (width, height)."""
        if self.upscale:
            return self.upscale
        return 2 if max(size) < AUTO_UPSCALE_BELOW else 1


@dataclass(frozen=True)
class Detection:
    """One piece of read text, its box in original image pixels (left, top, right, bottom)."""

    text: str
    confidence: float
    box: tuple[float, float, float, float]


def group_lines(
    detections: Sequence[Detection],
    image_size: tuple[int, int],
    min_confidence: float = 0.0,
    corner_margin: float = 0.0,
) -> list[str]:
    """Detections -> lines the way Rekognition LINE output reads: top to bottom, then left to right.

    Boxes whose vertical centres lie within half the median box height of a line's running mean
    join that line (the usual fix for EasyOCR's unstable order, issues #884/#1274). The corner rule
    then drops whole lines, as the original did with Rekognition's LINE boxes.
    """
    kept = [d for d in detections if d.confidence >= min_confidence and d.text.strip()]
    if not kept:
        return []
    tolerance = 0.5 * float(np.median([d.box[3] - d.box[1] for d in kept]))
    lines: list[list[Detection]] = []
    for detection in sorted(kept, key=lambda d: (d.box[1] + d.box[3]) / 2):
        centre = (detection.box[1] + detection.box[3]) / 2
        if lines:
            current = lines[-1]
            mean_centre = sum((d.box[1] + d.box[3]) / 2 for d in current) / len(current)
            if abs(centre - mean_centre) <= tolerance:
                current.append(detection)
                continue
        lines.append([detection])
    width, height = image_size
    texts = []
    for line in lines:
        line.sort(key=lambda d: d.box[0])
        left, top = min(d.box[0] for d in line) / width, min(d.box[1] for d in line) / height
        right, bottom = max(d.box[2] for d in line) / width, max(d.box[3] for d in line) / height
        in_corner = min(left, 1 - right) <= corner_margin and min(top, 1 - bottom) <= corner_margin
        if corner_margin > 0 and in_corner:
            continue
        texts.append(" ".join(d.text.strip() for d in line))
    return texts


class OcrEngine:
    """Base of every backend: `read(images)` with caching; subclasses implement `_read`."""

    name = ""

    def __init__(self, settings: OcrSettings, cache: OcrCache | None = None) -> None:
        self.settings = settings
        self.cache = cache

    @property
    def version(self) -> str:
        """The engine's version string, recorded with every score."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Engine, version and settings: what summary.json records and what keys the cache."""
        settings = asdict(self.settings)
        settings["precision"] = self.resolved_precision()
        return {
            "engine": self.name,
            "version": self.version,
            "pipeline": PIPELINE_REVISION,
            "settings": settings,
        }

    def resolved_precision(self) -> str:
        """The precision actually used; only EasyOCR's detector has a choice."""
        return "fp32"

    def read(self, images: Sequence[Image.Image]) -> list[str]:
        """Transcripts of `images` in order: lines top to bottom joined by `\\n`, "" if no text."""
        if self.cache is None:
            return self._read(images) if images else []
        engine_key = json.dumps(self.describe(), sort_keys=True)
        digests = [image_digest(image) for image in images]
        found = self.cache.get_many(digests, engine_key)
        missing = {d: image for d, image in zip(digests, images, strict=True) if d not in found}
        if missing:
            fresh = dict(zip(missing, self._read(list(missing.values())), strict=True))
            self.cache.put_many(fresh, engine_key)
            found.update(fresh)
        return [found[d] for d in digests]

    def _read(self, images: Sequence[Image.Image]) -> list[str]:
        raise NotImplementedError

    def _prepare(self, image: Image.Image) -> tuple[np.ndarray, int]:
        """RGB array enlarged by the factor for its size (bicubic), and that factor."""
        factor = self.settings.upscale_for(image.size)
        rgb = image.convert("RGB")
        if factor > 1:
            rgb = rgb.resize((rgb.width * factor, rgb.height * factor), Image.Resampling.BICUBIC)
        return np.asarray(rgb), factor

    def _transcript(self, detections: Sequence[Detection], size: tuple[int, int]) -> str:
        lines = group_lines(
            detections, size, self.settings.min_confidence, self.settings.corner_margin
        )
        return "\n".join(lines)
