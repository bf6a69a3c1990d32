"""The one OCR package: images in, transcripts out, `engine.read(images) -> list[str]`.

The default reader is RapidOCR (`rapidocr_engine`); EasyOCR (`easyocr_engine`, its CPU speed-ups in
`easyocr_cpu`) and Tesseract (`tesseract_engine`) stay selectable behind the same interface
(`base.OcrEngine`), so that one engine can select and another report; engines other packages
register under the `textimg.ocr_engines` entry points join them (`registered`). Readings are
cached on disk (`cache`) by image pixels + engine + model versions + settings.
"""

from __future__ import annotations

import shutil

from textimg.choices import BUILTIN_ENGINES, DEFAULT_ENGINE, ENGINES
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
from textimg.eval.ocr.registered import RegisteredEngine
from textimg.eval.ocr.tesseract_engine import TesseractEngine


def available_engines() -> list[str]:
    """Engines usable on this machine (Tesseract only when its binary is installed)."""
    return [name for name in ENGINES if name != "tesseract" or shutil.which("tesseract")]


def make_engine(settings: OcrSettings, cache: OcrCache | None = None) -> OcrEngine:
    """The engine named by `settings.engine` (built in, else registered by a package); each
    engine's models are loaded once per process."""
    engines = {"rapidocr": RapidOcrEngine, "easyocr": EasyOcrEngine, "tesseract": TesseractEngine}
    assert set(engines) == set(BUILTIN_ENGINES)
    engine_class = engines.get(settings.engine, RegisteredEngine)
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
    "RegisteredEngine",
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
