"""Shared test fixtures: the OCR engines (each loaded once per test run) and clean renderings."""

from __future__ import annotations

import os
from collections.abc import Callable

import matplotlib
import pytest
from PIL import Image, ImageDraw, ImageFont

_DEJAVU = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")


def _clean_fonts() -> list[str]:
    """Several plain fonts that ship with the dev dependencies (DejaVu, Caladea, Lato)."""
    fonts = [os.path.join(_DEJAVU, name) for name in ("DejaVuSans.ttf", "DejaVuSerif.ttf")]
    fonts.append(os.path.join(_DEJAVU, "DejaVuSansMono.ttf"))
    try:
        import font_caladea

        fonts.append(font_caladea.font_files["Caladea"])
    except ImportError:
        pass
    try:
        import rendercv_fonts

        lato = os.path.join(os.path.dirname(rendercv_fonts.__file__), "Lato", "Lato-Regular.ttf")
        if os.path.exists(lato):
            fonts.append(lato)
    except ImportError:
        pass
    return fonts


DrawText = Callable[..., Image.Image]


@pytest.fixture(scope="session")
def clean_fonts() -> list[str]:
    """Paths of plain fonts that OCR must read (at least the three DejaVu faces)."""
    return _clean_fonts()


@pytest.fixture(scope="session")
def draw_text() -> DrawText:
    """`draw_text(text, font=None, size=128, font_size=16, at=(6, 8), onto=None)`: black on white.

    `onto` draws into an existing image, to place several pieces of text freely.
    """

    def draw(
        text: str,
        font: str | None = None,
        size: int = 128,
        font_size: int = 16,
        at: tuple[int, int] = (6, 8),
        onto: Image.Image | None = None,
    ) -> Image.Image:
        image = onto if onto is not None else Image.new("RGB", (size, size), "white")
        face = ImageFont.truetype(font or _clean_fonts()[0], font_size)
        ImageDraw.Draw(image).multiline_text(at, text, font=face, fill="black", spacing=6)
        return image

    return draw


@pytest.fixture(scope="session")
def rapidocr_engine():
    """One uncached RapidOCR engine, the default reader, for the whole test run."""
    from textimg.eval.ocr import OcrSettings, make_engine

    return make_engine(OcrSettings(engine="rapidocr"))


@pytest.fixture(scope="session")
def easyocr_engine():
    """One uncached EasyOCR engine for the whole test run: loading the reader costs seconds."""
    from textimg.eval.ocr import OcrSettings, make_engine

    return make_engine(OcrSettings(engine="easyocr"))
