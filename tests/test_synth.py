"""The synthetic corpus: determinism across workers, resume after a kill or Ctrl-C, glyph
coverage, fit, and options checked before any font work."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image
from typer.testing import CliRunner

from textimg.cli import app
from textimg.data import fonts as fonts_module
from textimg.data.fonts import resolve_fonts
from textimg.data.shards import iter_samples, read_manifest, sha256_file
from textimg.data.synth import RenderContext, SynthConfig, font_fingerprint, run_synth
from textimg.errors import TextimgError

runner = CliRunner()


@pytest.fixture(scope="module")
def fonts():
    return tuple(resolve_fonts(system=False).valid)


def make_context(fonts, **overrides) -> RenderContext:
    settings = {"n": 24, "size": 64, "shard_size": 8, **overrides}
    return RenderContext(SynthConfig(fonts=font_fingerprint(fonts), **settings), fonts, None)


def shard_hashes(directory: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(directory.glob("*.tar"))}


def test_same_seed_gives_identical_bytes_whatever_the_worker_count(tmp_path, fonts):
    context = make_context(fonts)
    run_synth(context, tmp_path / "one", workers=1)
    run_synth(context, tmp_path / "two", workers=2)
    one, two = shard_hashes(tmp_path / "one"), shard_hashes(tmp_path / "two")
    assert len(one) == 3 and one == two
    other = make_context(fonts, seed=1)
    run_synth(other, tmp_path / "other", workers=1)
    assert shard_hashes(tmp_path / "other") != one


def test_samples_keep_every_promise(tmp_path, fonts):
    """Grayscale square PNGs, text only in the font's glyphs, ink inside the recorded box."""
    context = make_context(fonts, n=40, size=96, shard_size=40, max_lines=4)
    run_synth(context, tmp_path, workers=1)
    charsets = {f.file: set(f.charset) for f in fonts}
    for key, members in iter_samples([tmp_path]):
        meta = json.loads(members["json"])
        text = members["txt"].decode("utf-8")
        image = Image.open(io.BytesIO(members["png"]))
        assert image.mode == "L" and image.size == (96, 96)
        assert key == f"{meta['index']:09d}"
        assert text.strip() and 1 <= meta["lines"] == len(text.split("\n")) <= 4
        assert set(text) - {"\n"} <= charsets[meta["font_file"]]
        assert abs(meta["background"] - meta["foreground"]) >= 96
        x0, y0, x1, y1 = meta["bbox"]
        assert min(x0, y0) >= 0 and max(x1, y1) <= 96
        pixels = np.asarray(image)
        outside = pixels.copy()
        outside[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] = meta["background"]
        assert (outside == meta["background"]).all(), (
            "ink outside the text box: clipped or misplaced"
        )
        assert (pixels != meta["background"]).any(), "no ink at all"


def test_center_placement_moves_only_the_text_block(tmp_path, fonts):
    """Same seed, same texts and fonts as random placement; every block is centred instead."""
    settings = {"n": 24, "size": 64, "shard_size": 24, "max_lines": 1}
    run_synth(make_context(fonts, **settings), tmp_path / "random", workers=1)
    run_synth(make_context(fonts, placement="center", **settings), tmp_path / "center", workers=1)

    def samples(directory: Path) -> list[tuple[bytes, str, float, float]]:
        rows = []
        for _, members in iter_samples([directory]):
            meta = json.loads(members["json"])
            x0, y0, x1, y1 = meta["bbox"]
            rows.append((members["txt"], meta["font_file"], (x0 + x1) / 2, (y0 + y1) / 2))
        return rows

    spread, centred = samples(tmp_path / "random"), samples(tmp_path / "center")
    assert [r[:2] for r in spread] == [r[:2] for r in centred]
    # Wide texts fill the width, where hinting can shift them by a pixel or two.
    assert all(abs(x - 32) <= 4 and abs(y - 32) <= 3 for *_, x, y in centred)
    assert max(abs(y - 32) for *_, y in spread) > 8, "random placement should move the text"


def test_webdataset_reads_the_shards(tmp_path, fonts):
    run_synth(make_context(fonts), tmp_path, workers=1)
    urls = [str(p) for p in sorted(tmp_path.glob("*.tar"))]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    assert len(samples) == 24
    assert {"png", "txt", "json"} <= set(samples[0])


def test_rerun_skips_complete_shards_and_rebuilds_damaged_ones(tmp_path, fonts):
    context = make_context(fonts)
    run_synth(context, tmp_path, workers=1)
    clean = shard_hashes(tmp_path)
    (tmp_path / "synth-000001.tar").write_bytes(b"half a shard")
    (tmp_path / "synth-000002.tar").unlink()
    (tmp_path / "synth-000002.tar.tmp").write_bytes(b"left by a kill")
    report = run_synth(context, tmp_path, workers=1)
    assert report.skipped == ["synth-000000.tar"]
    assert sorted(r.name for r in report.rendered) == ["synth-000001.tar", "synth-000002.tar"]
    assert shard_hashes(tmp_path) == clean
    assert not list(tmp_path.glob("*.tmp"))


def test_corpus_from_before_an_option_existed_still_resumes(tmp_path, fonts):
    """A manifest written before `placement` existed describes a random-placement corpus."""
    context = make_context(fonts)
    run_synth(context, tmp_path, workers=1)
    clean = shard_hashes(tmp_path)
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["config"]["placement"]
    manifest_path.write_text(json.dumps(manifest))
    (tmp_path / "synth-000002.tar").unlink()
    report = run_synth(context, tmp_path, workers=1)
    assert report.skipped == ["synth-000000.tar", "synth-000001.tar"]
    assert shard_hashes(tmp_path) == clean
    centred = make_context(fonts, placement="center")
    with pytest.raises(TextimgError, match="differs in: placement"):
        run_synth(centred, tmp_path, workers=1)


def test_killed_run_resumes_to_the_same_bytes(tmp_path, fonts):
    args = ["synth", "--n", "300", "--size", "64", "--shard-size", "10", "--workers", "1"]
    args += ["--no-system-fonts"]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert runner.invoke(app, [*args, "--out", str(clean)]).exit_code == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "textimg", *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while len(list(killed.glob("*.tar"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(read_manifest(killed)["shards"])
    assert 0 < finished < 30, "the kill should land mid-run"
    result = runner.invoke(app, [*args, "--out", str(killed)])
    assert result.exit_code == 0, result.output
    assert shard_hashes(killed) == shard_hashes(clean)
    assert read_manifest(killed)["shards"] == read_manifest(clean)["shards"]


def assert_manifest_vouches_for_every_tar(directory: Path) -> dict[str, dict]:
    """Every tar in `directory` is recorded with its true sha256 and size; no temp file is left."""
    shards = read_manifest(directory)["shards"]
    assert sorted(shards) == sorted(p.name for p in directory.glob("*.tar"))
    for name, entry in shards.items():
        assert sha256_file(directory / name) == entry["sha256"]
        assert (directory / name).stat().st_size == entry["bytes"]
    assert not list(directory.glob("*.tmp"))
    return shards


@pytest.mark.parametrize(
    ("stop", "status", "said"), [("SIGINT", 130, "Ctrl-C"), ("SIGTERM", 143, "SIGTERM")]
)
def test_stop_signal_ends_the_pool_fast_and_records_what_finished(tmp_path, stop, status, said):
    args = ["synth", "--n", "1200", "--size", "64", "--shard-size", "30", "--workers", "2"]
    args += ["--no-system-fonts", "--out", str(tmp_path)]
    process = subprocess.Popen(
        [sys.executable, "-m", "textimg", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        manifest = read_manifest(tmp_path) if (tmp_path / "manifest.json").exists() else None
        if manifest and len(manifest["shards"]) >= 2:
            break
        time.sleep(0.05)
    process.send_signal(getattr(signal, stop))
    _, stderr = process.communicate(timeout=5)  # the pool stops within a sample, not a queue
    assert process.returncode == status, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Stopped by {said}: "), stderr
    finished = assert_manifest_vouches_for_every_tar(tmp_path)
    assert f"{len(finished)} of 40 shards are finished" in lines[0]
    assert "the same command resumes" in lines[0]
    assert 2 <= len(finished) < 40, "the stop should land mid-run"

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(assert_manifest_vouches_for_every_tar(tmp_path)) == 40


def test_font_checks_are_cached_between_runs_and_change_no_byte(tmp_path, monkeypatch):
    checked: list[str] = []
    real = fonts_module.validate_font
    monkeypatch.setattr(
        fonts_module, "validate_font", lambda path: checked.append(path) or real(path)
    )
    monkeypatch.setenv("TEXTIMG_CACHE_DIR", str(tmp_path / "cache"))
    args = ["synth", "--n", "24", "--size", "64", "--shard-size", "8", "--workers", "1"]
    args += ["--no-system-fonts"]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "cold")]).exit_code == 0
    assert len(checked) > 40 and (tmp_path / "cache" / "fonts.json").exists()
    checked.clear()
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "warm")]).exit_code == 0
    assert checked == [], "every font check comes from the cache"
    assert shard_hashes(tmp_path / "warm") == shard_hashes(tmp_path / "cold")
    assert read_manifest(tmp_path / "warm") == read_manifest(tmp_path / "cold")


def test_split_ranges_merge_into_the_full_manifest(tmp_path):
    common = ["synth", "--n", "30", "--size", "64", "--shard-size", "10", "--workers", "1"]
    common += ["--no-system-fonts"]
    full, split = tmp_path / "full", tmp_path / "split"
    assert runner.invoke(app, [*common, "--out", str(full)]).exit_code == 0
    for part in ("0:2", "2:3"):
        result = runner.invoke(app, [*common, "--out", str(split), "--shards", part])
        assert result.exit_code == 0, result.output
    assert (split / "manifest-000000-000002.json").exists()
    assert runner.invoke(app, ["merge", str(split)]).exit_code == 0
    assert read_manifest(split)["shards"] == read_manifest(full)["shards"]
    assert shard_hashes(split) == shard_hashes(full)


def test_text_file_is_used_and_line_breaks_kept(tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("hello world\nfirst line\\nsecond line\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["synth", "--n", "12", "--size", "128", "--workers", "1", "--no-system-fonts"]
    result = runner.invoke(app, [*args, "--text-file", str(texts), "--out", str(out)])
    assert result.exit_code == 0, result.output
    seen = [members["txt"].decode() for _, members in iter_samples([out])]
    assert {" ".join(text.split()) for text in seen} == {"hello world", "first line second line"}
    for text in seen:  # random breaks may be added, the user's own break is always kept
        assert text.startswith("hello") or "line\nsecond" in text


def test_preview_makes_a_contact_sheet(tmp_path, fonts):
    run_synth(make_context(fonts), tmp_path / "shards", workers=1)
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(
        app, ["preview", str(tmp_path / "shards"), "--out", str(sheet), "--n", "9"]
    )
    assert result.exit_code == 0, result.output
    image = Image.open(sheet)
    assert image.width > 3 * 128 and image.height > 2 * 128


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n", "0"], "--n must be positive"),
        (["--size", "8"], "too small for any font"),
        (["--font-dir", "/no/such/folder"], "font folder not found"),
        (["--fonts", "/no/such/list.txt"], "font list not found"),
        (["--shards", "5:9"], "outside"),
        (["--min-contrast", "300"], "--min-contrast"),
        (["--placement", "left"], "--placement must be one of random, center"),
        (["--workers", "-3"], "--workers must be 0 (all cores) or more, got -3"),
        (["--out", "{tmp}/a-file"], "a-file is a file"),
        (["--out", "{tmp}/a-file/below"], "a-file is a file"),
        (["--text-file", "{tmp}/no-such.txt"], "text file not found"),
    ],
)
def test_bad_options_give_one_clear_line_before_any_font_work(tmp_path, extra, message):
    (tmp_path / "a-file").write_text("not a folder")
    extra = [option.replace("{tmp}", str(tmp_path)) for option in extra]
    args = ["synth", "--out", str(tmp_path / "x"), "--n", "10", "--no-system-fonts", *extra]
    cache = tmp_path / "cache"
    result = runner.invoke(app, args, env={"COLUMNS": "400", "TEXTIMG_CACHE_DIR": str(cache)})
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not cache.exists(), "options are checked before any font is looked at"


def test_unknown_or_unusable_font_in_the_list_is_refused(tmp_path):
    listing = tmp_path / "fonts.txt"
    listing.write_text("DejaVu Sans\n/no/such/Font.ttf\n")
    base = ["synth", "--n", "4", "--out", str(tmp_path / "x"), "--no-system-fonts"]
    result = runner.invoke(app, [*base, "--fonts", str(listing)], env={"COLUMNS": "400"})
    assert result.exit_code == 1 and "/no/such/Font.ttf" in result.output
    assert "Traceback" not in result.output


def test_empty_text_file_and_foreign_corpus_are_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    base = ["synth", "--n", "10", "--size", "64", "--workers", "1", "--no-system-fonts"]
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "a"), "--text-file", str(empty)])
    assert result.exit_code == 1 and "no non-empty lines" in result.output
    assert runner.invoke(app, [*base, "--out", str(tmp_path / "b")]).exit_code == 0
    cache = tmp_path / "cache"
    env = {"COLUMNS": "400", "TEXTIMG_CACHE_DIR": str(cache)}
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--seed", "7"], env=env)
    assert not cache.exists(), "a foreign corpus is refused before any font is looked at"
    assert (
        result.exit_code == 1
        and "holds another corpus" in result.output
        and "seed" in result.output
    )


def test_cli_entry_point_prints_help_for_every_option():
    result = subprocess.run(
        [sys.executable, "-m", "textimg", "synth", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0
    for option in ("--n", "--out", "--seed", "--size", "--shards", "--workers", "--text-file"):
        assert option in result.stdout


def test_fonts_that_draw_no_text_of_the_corpus_are_left_out() -> None:
    from textimg.data.drawable import drawable_corpus
    from textimg.data.fonts import FontInfo

    def font(family: str, charset: str) -> FontInfo:
        return FontInfo(f"/{family}.ttf", family, "Regular", "OFL", "", charset, family)

    letters, marks = font("Letters", "abc "), font("Marks", "!? ")
    with pytest.warns(UserWarning) as caught:
        corpus = drawable_corpus({1: "abc", 3: "\u6f22"}, [letters, marks], "--text-file t")
    assert corpus.texts == ("abc",) and corpus.fonts == (letters,)
    assert [r.number for r in corpus.rejected] == [3]
    assert "1 fonts draw no character of --text-file t and are left out: Marks Regular" in [
        str(w.message) for w in caught
    ]
