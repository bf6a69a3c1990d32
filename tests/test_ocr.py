"""The OCR module: clean renderings read back, blanks read empty, line order, filters, cache,
and the default engine (RapidOCR) loading with no network and scoring 64 px renderings."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics

import matplotlib
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

from textimg.errors import TextimgError, TextimgWarning
from textimg.eval import metrics, ocr, scoring

TEXTS = ["hello world", "OPEN\nDaily 9-5", "Coffee shop", "The cat\nsat down"]
ENGINE_FIXTURES = ["rapidocr_engine", "easyocr_engine"]


@pytest.fixture(params=ENGINE_FIXTURES, scope="module")
def engine(request):
    """Each engine that must pass the reading tests, loaded once per test run."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def clean_readings(engine, draw_text, clean_fonts):
    """(prompt, transcript) for every text in every clean font, read in one batch."""
    pairs = [(text, font) for font in clean_fonts for text in TEXTS]
    images = [draw_text(text, font) for text, font in pairs]
    return [text for text, _ in pairs], engine.read(images)


def test_clean_renderings_read_back(clean_readings) -> None:
    prompts, transcripts = clean_readings
    scores = [metrics.trigram(p, t) for p, t in zip(prompts, transcripts, strict=True)]
    assert statistics.mean(scores) >= 0.9, list(zip(prompts, transcripts, strict=True))


def test_wrong_prompts_score_low(clean_readings) -> None:
    prompts, transcripts = clean_readings
    shifted = prompts[1:] + prompts[:1]
    scores = [metrics.trigram(p, t) for p, t in zip(shifted, transcripts, strict=True)]
    assert statistics.mean(scores) < 0.2


def test_blank_images_read_empty_and_score_zero(engine) -> None:
    blanks = [Image.new("RGB", (128, 128), "white"), Image.new("L", (64, 64), 0)]
    transcripts = engine.read(blanks)
    assert transcripts == ["", ""]
    assert metrics.trigram("hello", transcripts[0]) == 0.0


def test_lines_read_top_to_bottom_and_left_to_right(engine, draw_text) -> None:
    image = draw_text("alpha", size=256, font_size=22, at=(10, 10))
    draw_text("delta", font_size=22, at=(170, 112), onto=image)  # same line as bravo, right
    draw_text("bravo", font_size=22, at=(10, 110), onto=image)
    draw_text("charlie", font_size=22, at=(10, 200), onto=image)
    assert engine.read([image]) == ["alpha\nbravo delta\ncharlie"]


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
    assert settings.engine == ocr.DEFAULT_ENGINE == "rapidocr"
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


@pytest.mark.parametrize("name", ["rapidocr", "easyocr"])
def test_cache_round_trip_keyed_by_engine_and_models(tmp_path, draw_text, name) -> None:
    engine = ocr.make_engine(ocr.OcrSettings(engine=name), ocr.OcrCache(tmp_path / "c.sqlite"))
    image = draw_text("cached words")
    assert engine.read([image]) == engine.read([image.copy()]) == ["cached words"]
    assert len(engine.cache) == 1
    key = json.loads(engine.cache._db.execute("SELECT engine FROM readings").fetchone()[0])
    assert key["engine"] == name and key["version"] == engine.version
    model = {"rapidocr": "PP-OCRv6_rec_small", "easyocr": "english_g2"}[name]
    assert model in key["version"]


class _NoNetwork(socket.socket):
    def __init__(self, *args, **kwargs) -> None:
        raise OSError("network blocked by the test")


def _refuse(*args, **kwargs):
    raise OSError("network blocked by the test")


def test_rapidocr_loads_and_reads_with_the_network_blocked(monkeypatch, draw_text) -> None:
    monkeypatch.setattr(socket, "socket", _NoNetwork)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 9))
    ocr.load_rapidocr.cache_clear()  # load the models again, here, with no network
    engine = ocr.make_engine(ocr.OcrSettings(engine="rapidocr"))
    assert engine.read([draw_text("Offline reading", size=160, font_size=20)]) == [
        "Offline reading"
    ]


HELD_OUT = [
    "river", "Garden Party", "OPEN LATE", "quiet\nstreet", "Fresh Bread", "night owl",
    "SUMMER", "Blue\nMoon", "market day", "WELCOME", "Paper Kite", "green tea",
    "Harbor\nLights", "STOP", "old town", "Lucky Seven",
]  # fmt: skip
DEJAVU_FACES = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"]


def _fitted(text: str, face: str, size: int, dark_on_light: bool) -> Image.Image:
    """`text` as large as fits in a `size` px square (6% margin), dark on light or inverse."""
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", face)
    margin, measure = round(size * 0.06), ImageDraw.Draw(Image.new("L", (1, 1)))
    for font_size in range(size, 4, -1):
        font = ImageFont.truetype(path, font_size)
        box = measure.multiline_textbbox((0, 0), text, font=font, spacing=font_size // 4)
        if max(box[2] - box[0], box[3] - box[1]) <= size - 2 * margin:
            break
    ink, paper = (20, 235) if dark_on_light else (235, 30)
    image = Image.new("L", (size, size), paper)
    origin = (margin - box[0], margin - box[1])
    ImageDraw.Draw(image).multiline_text(origin, text, font=font, fill=ink, spacing=font_size // 4)
    return image.convert("RGB")


def test_default_score_reads_64px_renderings_and_rejects_blanks_and_mismatches(tmp_path) -> None:
    """What `textimg score` does with its defaults: RapidOCR, 2x enlargement below 256 px."""
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for index, text in enumerate(HELD_OUT):
        face = DEJAVU_FACES[index % len(DEJAVU_FACES)]
        _fitted(text, face, 64, index % 2 == 0).save(images / f"w{index}.png")
        rows.append({"key": f"w{index}", "text": text})
    for index, color in enumerate(("white", "black", (128, 128, 128))):
        Image.new("RGB", (64, 64), color).save(images / f"blank{index}.png")
        rows.append({"key": f"blank{index}", "text": HELD_OUT[index]})
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    engine = ocr.make_engine(ocr.OcrSettings())
    summary = scoring.score(images, prompts, tmp_path / "out", engine)
    assert summary["ocr"]["engine"] == "rapidocr"
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["ocr"]["version"].startswith("rapidocr")
    frame = pd.read_csv(tmp_path / "out" / "results.csv", keep_default_na=False).set_index("key")
    words = frame.loc[[f"w{i}" for i in range(len(HELD_OUT))]]
    assert words["trigram"].mean() >= 0.95, words[["prompt", "transcript"]]
    assert words["exact"].mean() >= 0.90, words[["prompt", "transcript"]]
    blanks = frame.loc[[f"blank{i}" for i in range(3)]]
    assert blanks["trigram"].max() <= 0.05, blanks["transcript"]
    shifted = [metrics.trigram(HELD_OUT[i - 1], t) for i, t in enumerate(words["transcript"])]
    assert statistics.mean(shifted) <= 0.2


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed")
def test_tesseract_backend_reads_clean_text(draw_text) -> None:
    engine = ocr.make_engine(ocr.OcrSettings(engine="tesseract"))
    prompts = ["hello world", "OPEN\nDaily 9-5"]
    transcripts = engine.read([draw_text(p) for p in prompts])
    scores = [metrics.trigram(p, t) for p, t in zip(prompts, transcripts, strict=True)]
    assert statistics.mean(scores) >= 0.8, transcripts
    assert engine.describe()["version"].startswith("tesseract")


def test_a_truncated_cache_is_set_aside_and_rebuilt(tmp_path) -> None:
    path = tmp_path / "ocr.sqlite"
    full = ocr.OcrCache(path)
    full.put_many({f"{i:064d}": "reading " * 20 for i in range(20_000)}, "engine")
    full._db.close()
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.warns(TextimgWarning, match="set aside as ocr.sqlite.corrupt-1"):
        cache = ocr.open_cache(path)
    assert cache is not None and len(cache) == 0
    assert (tmp_path / "ocr.sqlite.corrupt-1").read_bytes() == whole[: len(whole) // 2]
