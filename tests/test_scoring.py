"""`textimg score` and `textimg transcribe` end to end through the CLI, on clean renderings."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

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


PROTOCOL_PROMPTS = Path(__file__).parent / "fixtures" / "protocols" / "prompts"


def test_protocol_alone_lists_every_protocol() -> None:
    from textimg.eval.protocols import all_protocols

    for args in (["score", "--protocol"], ["score", "--protocol", "list"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        for protocol in all_protocols():
            assert protocol.name in result.output and protocol.official_code in result.output


def test_protocol_scores_benchmark_prompts_and_image_names_with_ceiling(
    tmp_path, draw_text
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    # MARIO-Eval's names: {method}_{dataset}_{prompt index}_{image index}
    draw_text("Grand Opening").save(images / "model_LAIONEval4000_0_0.png")
    draw_text("Grand Closing").save(images / "model_LAIONEval4000_0_1.png")
    draw_text("stop").save(images / "model_LAIONEval4000_1_0.png")
    out = tmp_path / "out"
    args = ["score", str(images), "--prompts", str(PROTOCOL_PROMPTS / "LAIONEval4000.txt")]
    args += ["--protocol", "mario", "--ceiling", "--out", str(out), "--no-cache"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "MARIO-Eval" in result.output and "by characters" in result.output
    frame = pd.read_parquet(out / "results.parquet")
    opening = frame[frame["key"] == "LAIONEval4000_0"].set_index("sample")
    assert opening.loc[0, "recall"] == pytest.approx(1.0, abs=1e-6)
    assert opening.loc[1, "recall"] == pytest.approx(0.5, abs=1e-6)
    assert "trigram" not in frame.columns
    assert frame.set_index("key").loc["LAIONEval4000_2", "status"] == "missing_image"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"]["name"] == "mario" and summary["protocol"]["version"]
    assert set(summary["aggregate"]) >= {"precision", "recall", "f", "acc"}
    assert summary["counts"]["samples_per_prompt"] == 2
    assert summary["ocr"]["engine"] == "rapidocr" and "upscale" in summary["ocr"]
    assert "preprocessing" in summary["ocr"]
    ceiling = summary["ceiling"]
    assert ceiling["aggregate"]["recall"] > 0.5
    assert ceiling["by_length"]["words"]["2-3"]["images"] == 2
    assert len(pd.read_csv(out / "ceiling.csv")) == 3
    report = (out / "report.html").read_text()
    assert "MARIO-Eval" in report and report.count("data:image/jpeg;base64,") == 3


def test_supplied_transcripts_score_without_an_engine(tmp_path, monkeypatch) -> None:
    import textimg.eval.ocr

    def no_engine(*_args, **_kwargs):
        raise AssertionError("an OCR engine was built for supplied transcripts")

    monkeypatch.setattr(textimg.eval.ocr, "make_engine", no_engine)
    transcripts = tmp_path / "t.jsonl"
    lines = [
        {"key": "000123", "transcript": "OPEN\nJoe's Cafe"},
        {"key": "000123", "sample": 1, "transcript": "OPEN"},
        {"key": "000123_2", "transcript": "open"},  # an image name: the protocol's image_key
    ]
    transcripts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    args = ["score", "--transcripts", str(transcripts), "--protocol", "anytext", "--out", str(out)]
    result = runner.invoke(app, [*args, "--prompts", str(PROTOCOL_PROMPTS / "anytext_test1k.json")])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ocr"]["engine"] == "supplied transcripts" and summary["ocr"]["sha256"]
    # lines right: 2 of 2, 1 of 2, and 0 of 2 ("open" is not "OPEN")
    assert summary["aggregate"]["sen_acc"] == pytest.approx(3 / 6)
    frame = pd.read_csv(out / "results.csv", dtype={"key": str})
    assert sorted(frame[frame["key"] == "000123"]["sample"]) == [0, 1, 2]
    report = (out / "report.html").read_text()
    assert "<th>image</th>" not in report and "no image" not in report
    again = runner.invoke(app, [*args[:-1], str(tmp_path / "o2"), "--ceiling", "--prompts",
                                str(PROTOCOL_PROMPTS / "anytext_test1k.json")])  # fmt: skip
    assert again.exit_code == 1 and "--transcripts" in again.output


def test_supplied_transcripts_without_protocol_get_textimg_metrics(tmp_path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"key": "a", "text": "hello"}\n{"key": "b", "text": "world"}\n')
    transcripts = tmp_path / "t.jsonl"
    transcripts.write_text('{"key": "a", "transcript": "hello"}\n')
    out = tmp_path / "out"
    args = ["score", "--transcripts", str(transcripts), "--prompts", str(prompts)]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "results.csv").set_index("key")
    assert frame.loc["a", "exact"] == 1.0 and frame.loc["b", "status"] == "missing_transcript"


def test_registered_engine_is_an_engine_choice_and_scores(tmp_path, draw_text) -> None:
    """A package registering under textimg.ocr_engines (a dist-info on the path) joins --engine."""
    site = tmp_path / "site"
    dist = site / "fake_reader-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-reader\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[textimg.ocr_engines]\nfake = fake_reader:Reader\n")
    (site / "fake_reader.py").write_text(
        "class Reader:\n    def read(self, images):\n        return ['hello' for _ in images]\n"
    )
    draw_text("anything").save(tmp_path / "a.png")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"key": "a", "text": "hello"}\n')
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, "-m", "textimg", "score", str(tmp_path), "--prompts", str(prompts)]
    help_text = subprocess.run([*command[:4], "--help"], env=env, capture_output=True, text=True)
    assert "fake" in help_text.stdout
    command += ["--engine", "fake", "--out", str(tmp_path / "out"), "--no-cache"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["exact"]["mean"] == 1.0
    assert summary["ocr"]["engine"] == "fake" and "fake-reader 1.0" in summary["ocr"]["version"]


def test_runs_scored_differently_are_not_put_side_by_side(tmp_path) -> None:
    from textimg.eval.comparable import check_comparable

    def run(name: str, engine: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        summary = {"trigram": {"mean": 0.5}, "counts": {"scored": 1}}
        summary["ocr"] = {"engine": engine, "version": "1", "settings": {"batch_size": 3}}
        (folder / "summary.json").write_text(json.dumps(summary))
        return folder

    a, b, c = run("a", "rapidocr"), run("b", "easyocr"), run("c", "rapidocr")
    out = tmp_path / "compare.csv"
    refused = runner.invoke(app, ["compare", str(a), str(b), "--out", str(out)])
    assert refused.exit_code == 1 and "not comparable" in refused.output
    assert "easyocr" in refused.output and "--allow-mixed" in refused.output
    assert not out.exists()
    mixed = runner.invoke(app, ["compare", str(a), str(b), "--out", str(out), "--allow-mixed"])
    assert mixed.exit_code == 0, mixed.output
    assert list(pd.read_csv(out)["trigram"]) == [0.5, 0.5]
    again = runner.invoke(app, ["compare", str(a), str(c), "--out", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output, "a written table is kept"
    assert list(pd.read_csv(out)["run"]) == [str(a), str(b)]
    check_comparable({"a": json.loads((a / "summary.json").read_text()),
                      "c": json.loads((c / "summary.json").read_text())}, False)  # fmt: skip
