"""Font discovery and validation: real fonts pass, broken, symbol and icon fonts are rejected."""

from pathlib import Path

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from matplotlib import get_data_path

from textimg.data.fonts import (
    REQUIRED,
    FontInfo,
    Rejection,
    read_font_list,
    resolve_fonts,
    validate_font,
)

MPL_FONTS = Path(get_data_path()) / "fonts" / "ttf"


def build_font(path: Path, shape_for) -> Path:
    """A real TrueType font whose glyph for each required character is `shape_for(char)`:
    a list of rectangles (x0, y0, x1, y1) in font units."""
    chars = REQUIRED + " "
    names = [".notdef"] + [f"g{ord(c)}" for c in chars]
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({ord(c): f"g{ord(c)}" for c in chars})
    glyphs, metrics = {}, {}
    for name in names:
        pen = TTGlyphPen(None)
        rectangles = [(50, 0, 450, 700)] if name == ".notdef" else shape_for(chr(int(name[1:])))
        for x0, y0, x1, y1 in rectangles:
            pen.moveTo((x0, y0))
            pen.lineTo((x0, y1))
            pen.lineTo((x1, y1))
            pen.lineTo((x1, y0))
            pen.closePath()
        glyphs[name] = pen.glyph()
        metrics[name] = (500, 0)
    builder.setupGlyf(glyphs)
    builder.setupHorizontalMetrics(metrics)
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Test Blocks", "styleName": "Regular"})
    builder.setupOS2()
    builder.setupPost()
    builder.save(str(path))
    return path


def test_real_font_is_valid_with_names_and_licence():
    info = validate_font(MPL_FONTS / "DejaVuSans.ttf")
    assert isinstance(info, FontInfo)
    assert info.family == "DejaVu Sans"
    assert "Bitstream" in info.license
    assert set(REQUIRED) <= set(info.charset)


def test_html_page_named_ttf_is_rejected(tmp_path):
    fake = tmp_path / "Fake-Regular.ttf"
    fake.write_text("<!DOCTYPE html><html><body>Not Found</body></html>")
    result = validate_font(fake)
    assert isinstance(result, Rejection)
    assert "parse" in result.reason


def test_font_with_one_box_for_every_letter_is_rejected(tmp_path):
    font = build_font(tmp_path / "Boxes.ttf", lambda c: [] if c == " " else [(50, 0, 450, 600)])
    result = validate_font(font)
    assert isinstance(result, Rejection)
    assert "distinct" in result.reason or "missing box" in result.reason


def test_symbol_font_with_distinct_non_letter_shapes_is_rejected(tmp_path):
    """Every character a different bar pattern (like an icon font): distinct, but not letters."""

    def bars(char: str):
        code = ord(char)
        return [(60 * k, 0, 60 * k + 40, 100 + 25 * ((code >> k) & 7)) for k in range(7)]

    result = validate_font(build_font(tmp_path / "Bars.ttf", bars))
    assert isinstance(result, Rejection)
    assert "look like letters" in result.reason or "distinct" in result.reason


def test_font_lacking_digits_is_rejected(tmp_path):
    source = MPL_FONTS / "DejaVuSansDisplay.ttf"
    result = validate_font(source)
    assert isinstance(result, Rejection)
    assert "cmap lacks" in result.reason


def test_last_resort_font_shipped_by_matplotlib_is_rejected():
    result = validate_font(MPL_FONTS / "LastResortHE-Regular.ttf")
    assert isinstance(result, Rejection)


def test_font_list_resolves_families_and_reports_missing(tmp_path):
    listing = tmp_path / "fonts.txt"
    listing.write_text("# comment\nDejaVu Serif   # inline comment\nNo Such Family\n\n")
    assert read_font_list(listing) == ["DejaVu Serif", "No Such Family"]
    catalog = resolve_fonts(listing, system=False)
    assert catalog.missing == ["No Such Family"]
    assert catalog.found["DejaVu Serif"] >= 4
    assert {f.family for f in catalog.valid} == {"DejaVu Serif"}


def test_extra_dir_fonts_are_used_and_bad_ones_reported(tmp_path):
    (tmp_path / "broken.ttf").write_bytes(b"\x00\x01\x00\x00garbage")
    (tmp_path / "DejaVuSansMono.ttf").write_bytes((MPL_FONTS / "DejaVuSansMono.ttf").read_bytes())
    listing = tmp_path / "empty.txt"
    listing.write_text("Nothing Here\n")
    catalog = resolve_fonts(listing, [tmp_path], system=False)
    assert [f.file for f in catalog.valid] == ["DejaVuSansMono.ttf"]
    assert "broken.ttf" in [Path(r.path).name for r in catalog.rejected]


@pytest.mark.parametrize("family", ["Roboto", "Lato", "EB Garamond", "Amatic SC", "Intuitive"])
def test_embedded_pip_fonts_are_found_without_system_fonts(family):
    catalog = resolve_fonts(system=False)
    assert family in {f.family for f in catalog.valid}
    assert not any("Font Awesome" in f.family for f in catalog.valid)


def test_fonts_cli_check_and_write(tmp_path):
    from typer.testing import CliRunner

    from textimg.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["fonts", "--check", "--no-system-fonts"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "found" in result.output and "missing" in result.output
    assert "Font Awesome" in result.output or "LastResort" in result.output
    written = tmp_path / "valid.txt"
    result = runner.invoke(
        app, ["fonts", "--all-fonts", "--no-system-fonts", "--write", str(written)]
    )
    assert result.exit_code == 0, result.output
    paths = read_font_list(written)
    assert len(paths) >= 40 and all(Path(p).is_file() for p in paths)
    again = resolve_fonts(written, system=False)
    assert len(again.valid) == len(paths) and not again.missing
