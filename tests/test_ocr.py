"""The OCR module: clean renderings read back, blanks read empty, line order, filters, cache."""

from __future__ import annotations

import shutil
import statistics

import pytest
from PIL import Image

from textimg.errors import TextimgError
from textimg.eval import metrics, ocr

TEXTS = ["hello world", "OPEN\nDaily 9-5", "Coffee shop", "The cat\nsat down"]


@pytest.fixture(scope="module")
def clean_readings(easyocr_engine, draw_text, clean_fonts):
    """(prompt, transcript) for every text in every clean font, read in one batch."""
    pairs = [(text, font) for font in clean_fonts for text in TEXTS]
    images = [draw_text(text, font) for text, font in pairs]
    return [text for text, _ in pairs], easyocr_engine.read(images)


def test_clean_renderings_read_back(clean_readings) -> None:
    prompts, transcripts = clean_readings
    scores = [metrics.trigram(p, t) for p, t in zip(prompts, transcripts, strict=True)]
    assert statistics.mean(scores) >= 0.9, list(zip(prompts, transcripts, strict=True))


def test_wrong_prompts_score_low(clean_readings) -> None:
    prompts, transcripts = clean_readings
    shifted = prompts[1:] + prompts[:1]
    scores = [metrics.trigram(p, t) for p, t in zip(shifted, transcripts, strict=True)]
    assert statistics.mean(scores) < 0.2


def test_blank_images_read_empty_and_score_zero(easyocr_engine) -> None:
    blanks = [Image.new("RGB", (128, 128), "white"), Image.new("L", (64, 64), 0)]
    transcripts = easyocr_engine.read(blanks)
    assert transcripts == ["", ""]
    assert metrics.trigram("hello", transcripts[0]) == 0.0


def test_lines_read_top_to_bottom_and_left_to_right(easyocr_engine, draw_text) -> None:
    image = draw_text("alpha", size=256, font_size=22, at=(10, 10))
    draw_text("delta", font_size=22, at=(170, 112), onto=image)  # same line as bravo, right
    draw_text("bravo", font_size=22, at=(10, 110), onto=image)
    draw_text("charlie", font_size=22, at=(10, 200), onto=image)
    assert easyocr_engine.read([image]) == ["alpha\nbravo delta\ncharlie"]


def _det(text: str, box: tuple[float, float, float, float], confidence: float = 0.9):
    return ocr.Detection(text, confidence, box)


def test_group_lines_orders_boxes_like_rekognition_lines() -> None:
    detections = [
        _det("world", (60, 12, 100, 28)),
        _det("second", (10, 50, 70, 66)),
        _det("hello", (10, 10, 50, 26)),
    ]
    assert ocr.group_lines(detections, (128, 128)) == ["hello world", "second"]


def test_group_lines_confidence_and_corner_filters() -> None:
    corner = _det("(c) site", (100, 121, 127, 127))  # within 5% of the right and bottom edges
    wide_top = _det("header", (20, 2, 100, 10))  # near the top only: not a corner
    weak = _det("noise", (20, 60, 60, 70), confidence=0.3)
    detections = [corner, wide_top, weak]
    assert ocr.group_lines(detections, (128, 128)) == ["header", "noise", "(c) site"]
    kept = ocr.group_lines(detections, (128, 128), min_confidence=0.5, corner_margin=0.05)
    assert kept == ["header"]


def test_settings_validation_and_auto_upscale() -> None:
    settings = ocr.OcrSettings()
    assert settings.upscale_for((64, 64)) == 2
    assert settings.upscale_for((128, 128)) == 2
    assert settings.upscale_for((300, 512)) == 1
    assert ocr.OcrSettings(upscale=3).upscale_for((512, 512)) == 3
    with pytest.raises(TextimgError):
        ocr.OcrSettings(engine="rekognition")


class _CountingEngine(ocr.OcrEngine):
    """A fake backend that counts the images it really reads."""

    name = "fake"
    version = "1"

    def __init__(self, settings: ocr.OcrSettings, cache: ocr.OcrCache | None) -> None:
        super().__init__(settings, cache)
        self.calls = 0

    def _read(self, images):
        self.calls += len(images)
        return [f"{image.width}x{image.getpixel((0, 0))}" for image in images]


def test_cache_reuses_readings_per_image_and_settings(tmp_path) -> None:
    cache = ocr.OcrCache(tmp_path / "ocr.sqlite")
    images = [Image.new("RGB", (8, 8), (i, i, i)) for i in range(3)]
    engine = _CountingEngine(ocr.OcrSettings(), cache)
    first = engine.read(images)
    assert engine.calls == 3
    assert engine.read(images[::-1]) == first[::-1]
    assert engine.calls == 3
    # Same pixels as a PNG round trip: still a hit; a new setting is a different reading.
    png_copy = Image.open(_png(images[0], tmp_path))
    assert engine.read([png_copy]) == first[:1] and engine.calls == 3
    other = _CountingEngine(ocr.OcrSettings(min_confidence=0.5), ocr.OcrCache(cache.path))
    other.read(images[:1])
    assert other.calls == 1 and len(cache) == 4


def _png(image: Image.Image, directory) -> str:
    path = str(directory / "copy.png")
    image.save(path)
    return path


def test_easyocr_cache_round_trip(tmp_path, draw_text) -> None:
    engine = ocr.make_engine(ocr.OcrSettings(), ocr.OcrCache(tmp_path / "c.sqlite"))
    image = draw_text("cached words")
    assert engine.read([image]) == engine.read([image.copy()])
    assert len(engine.cache) == 1


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed")
def test_tesseract_backend_reads_clean_text(draw_text) -> None:
    engine = ocr.make_engine(ocr.OcrSettings(engine="tesseract"))
    prompts = ["hello world", "OPEN\nDaily 9-5"]
    transcripts = engine.read([draw_text(p) for p in prompts])
    scores = [metrics.trigram(p, t) for p, t in zip(prompts, transcripts, strict=True)]
    assert statistics.mean(scores) >= 0.8, transcripts
    assert engine.describe()["version"].startswith("tesseract")
