"""The one OCR package: images in, transcripts out, `engine.read(images) -> list[str]`.

The default reader is RapidOCR (`rapidocr_engine`); EasyOCR (`easyocr_engine`, its CPU speed-ups in
`easyocr_cpu`) and Tesseract (`tesseract_engine`) stay selectable behind the same interface
(`base.OcrEngine`), so that one engine can select and another report. Readings are cached on disk
(`cache`) by image pixels + engine + model versions + settings.
"""

from __future__ import annotations

import shutil

from textimg.choices import DEFAULT_ENGINE, ENGINES
from textimg.eval.ocr.base import (
    AUTO_UPSCALE_BELOW,
    Detection,
    OcrEngine,
    OcrSettings,
    group_lines,
)
from textimg.eval.ocr.cache import OcrCache, default_cache_path, image_digest, open_cache
from textimg.eval.ocr.easyocr_engine import EasyOcrEngine, load_easyocr_reader
from textimg.eval.ocr.rapidocr_engine import RAPIDOCR_MODELS, RapidOcrEngine, load_rapidocr
from textimg.eval.ocr.tesseract_engine import TesseractEngine


def available_engines() -> list[str]:
    """Engines usable on this machine (Tesseract only when its binary is installed)."""
    return [name for name in ENGINES if name != "tesseract" or shutil.which("tesseract")]


def make_engine(settings: OcrSettings, cache: OcrCache | None = None) -> OcrEngine:
    """The engine named by `settings.engine`; each engine's models are loaded once per process."""
    engines = {"rapidocr": RapidOcrEngine, "easyocr": EasyOcrEngine, "tesseract": TesseractEngine}
    engine_class = engines[settings.engine]
    return engine_class(settings, cache)


__all__ = [
    "AUTO_UPSCALE_BELOW",
    "DEFAULT_ENGINE",
    "ENGINES",
    "Detection",
    "EasyOcrEngine",
    "OcrCache",
    "OcrEngine",
    "OcrSettings",
    "RAPIDOCR_MODELS",
    "RapidOcrEngine",
    "TesseractEngine",
    "available_engines",
    "default_cache_path",
    "group_lines",
    "image_digest",
    "load_easyocr_reader",
    "load_rapidocr",
    "make_engine",
    "open_cache",
]
