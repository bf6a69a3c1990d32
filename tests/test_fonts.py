"""Font discovery and validation: real fonts pass, broken, symbol and icon fonts are rejected;
checks are cached per file and redone when the file changes."""

import json
import os
import shutil
from pathlib import Path

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from matplotlib import get_data_path

from textimg.data import fonts
from textimg.data.fonts import (
    REQUIRED,
    FontCheckCache,
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
    written.write_text("# my own list\n")
    args = ["fonts", "--no-system-fonts", "--write", str(written)]
    refused = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert refused.exit_code == 1 and "exists; pass --overwrite" in refused.output
    assert written.read_text() == "# my own list\n", "a user's file is never replaced unasked"
    replaced = runner.invoke(app, [*args, "--overwrite"])
    assert replaced.exit_code == 0 and read_font_list(written)


@pytest.fixture
def counted_checks(monkeypatch) -> list[str]:
    """The paths the real `validate_font` is asked to check, in order."""
    checked: list[str] = []
    real = fonts.validate_font

    def counting(path):
        checked.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(fonts, "validate_font", counting)
    return checked


def test_font_checks_are_cached_and_redone_when_the_file_changes(tmp_path, counted_checks):
    folder = tmp_path / "fonts"
    folder.mkdir()
    good = Path(shutil.copy(MPL_FONTS / "DejaVuSansMono.ttf", folder))
    bad = folder / "broken.ttf"
    bad.write_bytes(b"\x00\x01\x00\x00garbage")
    cache_file = tmp_path / "cache" / "fonts.json"

    cache = FontCheckCache(cache_file)
    first = [cache.validate(good), cache.validate(bad)]
    cache.save()
    assert counted_checks == ["DejaVuSansMono.ttf", "broken.ttf"]
    assert isinstance(first[0], FontInfo) and isinstance(first[1], Rejection)

    counted_checks.clear()
    again = FontCheckCache(cache_file)
    assert [again.validate(good), again.validate(bad)] == first
    assert counted_checks == [], "an unchanged file is answered from the cache"
    linked = folder / "link.ttf"
    linked.symlink_to(good)
    assert again.validate(linked) == FontInfo(**{**first[0].__dict__, "path": str(linked)})
    assert counted_checks == [], "the key is the resolved path"

    stat = good.stat()
    os.utime(good, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    bad_stat = bad.stat()
    bad.write_bytes(b"\x00\x01\x00\x00other garbage")  # new size, same mtime
    os.utime(bad, ns=(bad_stat.st_atime_ns, bad_stat.st_mtime_ns))
    changed = FontCheckCache(cache_file)
    assert [changed.validate(good), changed.validate(bad)] == first
    assert counted_checks == ["DejaVuSansMono.ttf", "broken.ttf"]


@pytest.mark.parametrize("damage", [b"{not json", b"[1, 2]", b'{"checker": 3, "fonts": []}'])
def test_a_corrupt_font_cache_is_ignored_and_rebuilt(tmp_path, counted_checks, damage):
    cache_file = tmp_path / "fonts.json"
    cache_file.write_bytes(damage)
    font = MPL_FONTS / "DejaVuSans.ttf"
    cache = FontCheckCache(cache_file)
    assert cache.validate(font) == validate_font(font)
    cache.save()
    assert counted_checks == ["DejaVuSans.ttf"]
    assert str(font.resolve()) in json.loads(cache_file.read_text())["fonts"]
    FontCheckCache(cache_file).validate(font)
    assert len(counted_checks) == 1, "the rebuilt cache answers the next run"


def test_damaged_entries_are_checked_again(tmp_path, counted_checks):
    cache_file = tmp_path / "fonts.json"
    font = MPL_FONTS / "DejaVuSans.ttf"
    cache = FontCheckCache(cache_file)
    expected = cache.validate(font)
    cache.save()
    stored = json.loads(cache_file.read_text())
    entry = stored["fonts"][str(font.resolve())]
    del entry["font"]["charset"]
    cache_file.write_text(json.dumps(stored))
    assert FontCheckCache(cache_file).validate(font) == expected
    assert len(counted_checks) == 2


def test_an_unwritable_cache_is_skipped(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the cache folder should be")
    cache = FontCheckCache(blocker / "fonts.json")
    assert isinstance(cache.validate(MPL_FONTS / "DejaVuSans.ttf"), FontInfo)
    cache.save()  # no error: the run goes on uncached
    assert blocker.read_text().startswith("a file")
