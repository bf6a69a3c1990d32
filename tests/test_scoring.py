"""`textimg score` and `textimg transcribe` end to end through the CLI, on clean renderings."""

from __future__ import annotations

import io
import json
import math
import tarfile

import pandas as pd
import pytest
from typer.testing import CliRunner

from textimg.cli import app
from textimg.eval import scoring
from textimg.eval.ocr import OcrEngine, OcrSettings

runner = CliRunner()


@pytest.fixture(scope="module")
def scored_folder(tmp_path_factory, draw_text):
    """A folder with two good images, a corrupt one, and prompts with a missing and an empty key."""
    root = tmp_path_factory.mktemp("score")
    images = root / "images"
    images.mkdir()
    draw_text("hello world").save(images / "good.png")
    draw_text("Coffee").save(images / "wrong.png")
    (images / "broken.png").write_bytes(b"not a png")
    draw_text("").save(images / "blank.jpg")
    prompts = root / "prompts.jsonl"
    rows = [
        {"key": "good", "text": "hello world"},
        {"key": "wrong", "text": "a completely different prompt"},
        {"key": "broken", "text": "x"},
        {"key": "absent", "text": "no image for me"},
        {"key": "blank", "text": ""},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = root / "out"
    args = ["score", str(images), "--prompts", str(prompts), "--out", str(out)]
    result = runner.invoke(app, [*args, "--cache-dir", str(root / "cache")])
    assert result.exit_code == 0, result.output
    return out


def test_score_writes_rows_with_statuses(scored_folder) -> None:
    frame = pd.read_parquet(scored_folder / "results.parquet").set_index("key")
    assert frame.loc["good", "trigram"] >= 0.9
    assert frame.loc["wrong", "trigram"] < 0.2
    assert frame.loc["broken", "status"] == "unreadable_image"
    assert frame.loc["absent", "status"] == "missing_image"
    assert frame.loc["blank", "status"] == "empty_prompt"
    assert frame.loc["blank", "trigram"] == 1.0  # no text asked, none read
    assert math.isnan(frame.loc["broken", "trigram"])
    assert len(pd.read_csv(scored_folder / "results.csv")) == 5


def test_score_summary_and_report(scored_folder) -> None:
    summary = json.loads((scored_folder / "summary.json").read_text())
    low, high = summary["trigram"]["ci95"]
    assert low <= summary["trigram"]["mean"] <= high
    assert summary["counts"]["scored"] == 3 and summary["counts"]["rows"] == 5
    assert summary["counts"]["status"]["missing_image"] == 1
    assert summary["ocr"]["engine"] == "rapidocr" and "upscale" in summary["ocr"]["settings"]
    assert "PP-OCRv6" in summary["ocr"]["version"]
    report = (scored_folder / "report.html").read_text()
    assert report.count("data:image/jpeg;base64,") == 3  # the three readable images, embedded
    # Worst first: the unscored rows, then "wrong" before "good".
    keys = [report.index(f"<td>{key}</td>") for key in ("broken", "wrong", "good")]
    assert keys == sorted(keys)


class _FailingOnce(OcrEngine):
    """Fails any batch holding the image whose top-left pixel is red, so that image fails alone."""

    name, version = "fake", "1"

    def _read(self, images):
        if any(image.getpixel((0, 0)) == (255, 0, 0) for image in images):
            raise RuntimeError("engine crashed")
        return ["ok"] * len(images)


def test_one_ocr_failure_is_one_row(tmp_path) -> None:
    from PIL import Image

    items = [
        scoring.Item("a", "ok", "a.png", Image.new("RGB", (8, 8), "white")),
        scoring.Item("b", "ok", "b.png", Image.new("RGB", (8, 8), "red")),
    ]
    rows, _ = scoring.score_items(items, _FailingOnce(OcrSettings()))
    assert [r["status"] for r in rows] == ["ok", "ocr_error"]
    assert rows[0]["exact"] == 1.0 and "engine crashed" in rows[1]["error"]


def _shard(path, samples) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in samples:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_score_shards_uses_each_samples_transcript(tmp_path, draw_text) -> None:
    png = io.BytesIO()
    draw_text("OPEN\nDaily").save(png, format="PNG")
    shards = tmp_path / "shards"
    shards.mkdir()
    _shard(
        shards / "test-000000.tar",
        [("s1.png", png.getvalue()), ("s1.txt", b"OPEN\nDaily"), ("s2.txt", b"no image")],
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["score", str(shards), "--out", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "results.csv").set_index("key")
    assert frame.loc["s1", "transcript"] == "OPEN\nDaily"
    assert frame.loc["s2", "status"] == "missing_image"


def test_score_folder_without_prompts_is_one_line_error(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    result = runner.invoke(app, ["score", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "needs --prompts" in result.output and "Traceback" not in result.output


def test_transcribe_writes_pack_format(tmp_path, draw_text) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    draw_text("hello world").save(tmp_path / "in" / "sub" / "one.png")
    (tmp_path / "in" / "bad.jpg").write_bytes(b"junk")
    out = tmp_path / "transcripts.jsonl"
    args = ["transcribe", str(tmp_path / "in"), "--out", str(out), "--no-cache"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [{"image": "sub/one.png", "text": "hello world"}]


def test_progress_is_on_stderr_and_only_on_a_terminal(scored_folder, tmp_path) -> None:
    root = scored_folder.parent
    args = ["score", str(root / "images"), "--prompts", str(root / "prompts.jsonl")]
    args += ["--cache-dir", str(root / "cache")]
    for terminal in ("1", "0"):
        out = ["--out", str(tmp_path / terminal)]
        result = runner.invoke(app, [*args, *out], env={"TTY_COMPATIBLE": terminal})
        assert result.exit_code == 0, result.output
        assert ("reading" in result.stderr) == (terminal == "1")
        assert "reading" not in result.stdout and "scored 3 of 5" in result.stdout


def test_score_and_transcribe_report_progress_against_the_total(scored_folder, tmp_path) -> None:
    calls: list[tuple[str, int, int | None]] = []
    root = scored_folder.parent
    engine = _FailingOnce(OcrSettings())
    scoring.score(
        root / "images",
        root / "prompts.jsonl",
        tmp_path / "s",
        engine,
        lambda *call: calls.append(call),
    )
    assert calls[-1] == ("reading", 5, 5)  # five prompts, one without an image
    calls.clear()
    scoring.transcribe(
        root / "images", tmp_path / "t.jsonl", engine, 2, lambda *call: calls.append(call)
    )
    assert calls == [("reading", 2, 4), ("reading", 4, 4)]
