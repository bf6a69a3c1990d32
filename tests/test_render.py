"""Fitting and drawing: text always fits whole, shrinks before it is cut, and is drawn exactly."""

from pathlib import Path

import pytest
from matplotlib import get_data_path

from textimg.data.render import Layout, break_lines, fit_text, render_layout

FONT = str(Path(get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def test_break_lines_keeps_paragraphs_and_adds_breaks():
    paragraphs = [["a", "b", "c"], ["d", "e"]]
    assert break_lines(paragraphs, {1}) == [["a"], ["b", "c"], ["d", "e"]]
    assert break_lines(paragraphs, set()) == [["a", "b", "c"], ["d", "e"]]


@pytest.mark.parametrize("align", ["left", "center", "right"])
def test_text_that_fits_is_kept_whole_at_its_size(align):
    fitted = fit_text([["hello", "world"]], {1}, FONT, 20, 0.1, align, 100, 10, 3)
    assert fitted.lines == [["hello"], ["world"]] and fitted.font_size == 20 and fitted.dropped == 0
    x0, y0, x1, y1 = fitted.box
    assert x1 - x0 <= 100 and y1 - y0 <= 100


def test_too_wide_text_is_rewrapped_then_shrunk_never_clipped():
    words = [["several", "words", "that", "are", "too", "wide"]]
    fitted = fit_text(words, set(), FONT, 40, 0.0, "left", 120, 10, 5)
    assert len(fitted.lines) > 1 and fitted.dropped == 0
    assert [w for line in fitted.lines for w in line] == words[0]
    x0, y0, x1, y1 = fitted.box
    assert x1 - x0 <= 120 and y1 - y0 <= 120


def test_words_are_dropped_only_at_the_minimum_size():
    words = [[f"word{i}" for i in range(40)]]
    fitted = fit_text(words, set(), FONT, 30, 0.2, "left", 100, 12, 3)
    assert fitted.font_size == 12 and fitted.dropped > 0 and len(fitted.lines) <= 3
    one_word = fit_text([["x" * 60]], set(), FONT, 30, 0.0, "left", 100, 12, 3)
    assert one_word.dropped > 0 and len(one_word.lines[0][0]) < 60


def test_render_draws_the_layout_and_reports_its_ink_box():
    layout = Layout(("Hi",), ((10, 10),), FONT, 20, 200, 20, 64)
    image, ink = render_layout(layout)
    assert image.mode == "L" and image.size == (64, 64)
    assert ink is not None and 10 <= ink[0] < ink[2] <= 64
    assert image.getpixel((0, 0)) == 200 and image.getextrema()[0] <= 40
    blank, none = render_layout(Layout((" ",), ((10, 10),), FONT, 20, 200, 20, 64))
    assert none is None and blank.getextrema() == (200, 200)


WORDS = [
    "Fashion", "taker", "AVATAR", "Tokyo", "WAVE", "Yes!", "r.", "f)", "$19.99", "12:30", "100%",
    "@handle", "#tag", "Hello,", ":)", '"quoted"', "LTV", "jumpy", "quiz", "OFFICE", "x", " ",
]  # fmt: skip


def test_word_metrics_equal_measuring_the_word_in_every_font():
    """Words measured from their characters (fonts without kerning) equal Pillow's own measure."""
    from PIL import ImageFont

    from textimg.data.fonts import resolve_fonts
    from textimg.data.render import MEASURE_SIZE, _spaces_by_character, word_metrics

    fonts = resolve_fonts(system=False).valid
    composed = [font for font in fonts if _spaces_by_character(font.path)]
    assert 0.5 * len(fonts) < len(composed) < len(fonts), "both ways should be exercised"
    for font in fonts:
        face = ImageFont.truetype(font.path, MEASURE_SIZE, layout_engine=ImageFont.Layout.BASIC)
        for word in WORDS:
            expected = (face.getlength(word), face.getbbox(word, anchor="la"))
            assert word_metrics(font.path, word) == expected, (font.file, word)


def test_an_overlong_line_is_cut_in_few_measures_to_the_fewest_drops(monkeypatch):
    """A 10,000-character word or a 2,000-word line fits in tens of layouts, not thousands, and
    keeps exactly what dropping one at a time keeps."""
    import textimg.data.render as render

    measured = []
    real = render.place_lines
    monkeypatch.setattr(render, "place_lines", lambda *a: measured.append(1) or real(*a))
    word = fit_text([["x" * 10_000]], set(), FONT, 30, 0.0, "left", 100, 12, 3)
    assert len(measured) < 100 and word.dropped == 10_000 - len(word.lines[0][0])
    one_less = fit_text(
        [["x" * (len(word.lines[0][0]) + 1)]], set(), FONT, 12, 0.0, "left", 100, 12, 3
    )
    assert one_less.dropped == 1, "one more character does not fit"
    measured.clear()
    words = fit_text([["ab"] * 2000], set(), FONT, 30, 0.0, "left", 100, 12, 3)
    assert len(measured) < 100 and sum(map(len, words.lines)) == 2000 - words.dropped
    kept = sum(map(len, words.lines))
    bigger = fit_text([["ab"] * (kept + 1)], set(), FONT, 12, 0.0, "left", 100, 12, 3)
    assert bigger.dropped == 1, "one more word does not fit"
