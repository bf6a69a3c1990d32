"""Tests for `textimg.data.pack` and `textimg pack`: pack tiny real-looking corpora, read back."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import webdataset as wds
from PIL import Image
from typer.testing import CliRunner

from textimg.cli.app import app
from textimg.data.pack import PackOptions, load_packed_texts, pack, split_of
from textimg.data.shards import iter_samples, read_manifest
from textimg.errors import TextimgError

TEXTS = [
    "héllo wörld",
    "第一行\n第二行",
    "",
    "  spaced  \n",
    "NA",
    'emoji 🙂, "quotes"',
    "tab\tend",
]


def _image(
    path: Path, index: int, size: tuple[int, int] = (16, 12), fmt: str | None = None
) -> None:
    """A small image whose bytes differ per index (so no accidental duplicates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "RGBA" if fmt == "WEBP" else "RGB"
    Image.new(mode, size, (index * 37 % 256, index * 11 % 256, 90)).save(path, fmt)


def _good_rows(images: Path, count: int = len(TEXTS)) -> list[dict[str, str]]:
    """`count` rows over every supported format, a subfolder and a PNG named `.jpg`."""
    kinds = [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("gif", "GIF"), ("jpg", "PNG")]
    rows = []
    for index in range(count):
        suffix, fmt = kinds[index % len(kinds)]
        name = f"sub/img{index}.{suffix}" if index % 3 else f"img{index}.{suffix}"
        _image(images / name, index, fmt=fmt)
        rows.append({"image": name, "text": TEXTS[index % len(TEXTS)], "source": f"post{index}"})
    return rows


def _write_table(rows: list[dict], path: Path) -> Path:
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def _packed(out: Path) -> dict[str, dict[str, bytes]]:
    """Every packed sample by its source image path."""
    samples = {}
    for key, members in iter_samples([out]):
        metadata = json.loads(members["json"])
        samples[metadata["image"]] = {"key": key.encode(), **members}
    return samples


def _rejects(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]


def _pack(images: Path, out: Path, table: Path | None, **options) -> object:
    options.setdefault("test_fraction", 0.3)
    return pack(images, out, table, PackOptions(**options), workers=1)


def test_every_good_image_comes_back_byte_identical_with_its_exact_transcript(tmp_path):
    rows = _good_rows(tmp_path / "images", 10)
    result = _pack(tmp_path / "images", tmp_path / "out", _write_table(rows, tmp_path / "t.jsonl"))
    packed = _packed(tmp_path / "out")
    assert result.packed == len(packed) == 10 and not result.rejected
    assert result.train and result.test
    for row in rows:
        sample = packed[row["image"]]
        image = [ext for ext in ("jpg", "png", "webp", "gif") if ext in sample]
        assert len(image) == 1, sample.keys()
        assert sample[image[0]] == (tmp_path / "images" / row["image"]).read_bytes()
        assert sample["txt"].decode("utf-8") == row["text"]
        metadata = json.loads(sample["json"])
        assert metadata["columns"] == {"source": row["source"]}
        assert (metadata["width"], metadata["height"]) == (16, 12)
        assert metadata["format"] == image[0]
    # format from the bytes, not the name: a PNG called img4.jpg is stored as .png
    assert "png" in packed["sub/img4.jpg"]


def test_every_bad_row_is_rejected_with_its_reason_and_the_run_goes_on(tmp_path):
    images = tmp_path / "images"
    rows = _good_rows(images, 3)
    jpeg = (images / "img0.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (images / "garbage.png").write_bytes(b"not an image at all")
    _image(images / "bitmap.bmp", 50)
    _image(images / "blank.png", 51)
    bad = [
        {"image": "truncated.jpg", "text": "t"},
        {"image": "garbage.png", "text": "g"},
        {"image": "bitmap.bmp", "text": "b"},
        {"image": "gone.jpg", "text": "m"},
        {"image": rows[0]["image"], "text": "same bytes again"},
        {"image": "blank.png", "text": " \n"},
        {"text": "no image column"},
        {"image": "img0.jpg", "text": None},
    ]
    table = tmp_path / "t.jsonl"
    _write_table(rows + bad, table)
    with open(table, "ab") as handle:
        handle.write(b"{this is not json\n")
        handle.write(b'{"image": "img0.jpg", "text": "caf\xe9 in latin-1"}\n')
    result = _pack(images, tmp_path / "out", table, drop_empty=True)
    reasons = {(r["row"], r["reason"]) for r in _rejects(tmp_path / "out")}
    assert reasons == {
        (2, "empty_text"),
        (3, "corrupt_image"),
        (4, "corrupt_image"),
        (5, "unsupported_format"),
        (6, "missing_file"),
        (7, "duplicate"),
        (8, "empty_text"),
        (9, "unreadable_row"),
        (10, "unreadable_row"),
        (11, "unreadable_row"),
        (12, "non_utf8_text"),
    }
    assert result.packed == 2  # rows 0 and 1; row 2 has an empty transcript
    assert result.rejected["unreadable_row"] == 3 and result.rejected["empty_text"] == 2
    assert sum(result.rejected.values()) + result.packed == result.rows == 13


def test_csv_jsonl_and_parquet_give_the_same_shards(tmp_path):
    rows = _good_rows(tmp_path / "images", 9)
    shards = []
    for suffix in (".jsonl", ".csv", ".parquet"):
        table = _write_table(rows, tmp_path / f"t{suffix}")
        _pack(tmp_path / "images", tmp_path / suffix[1:], table)
        shards.append(read_manifest(tmp_path / suffix[1:])["shards"])
    assert shards[0] == shards[1] == shards[2]
    assert len(shards[0]) == 2


def test_csv_keeps_odd_transcripts_exact_and_rejects_a_broken_line(tmp_path):
    rows = _good_rows(tmp_path / "images", 3)
    table = tmp_path / "t.csv"
    table.write_text(
        "image,text\n"
        f'{rows[0]["image"]},"two\nlines, with comma"\n'
        f"{rows[1]['image']},one,two,three\n"
        f"{rows[2]['image']},null\n"
    )
    _pack(tmp_path / "images", tmp_path / "out", table, test_fraction=0.0)
    packed = _packed(tmp_path / "out")
    assert packed[rows[0]["image"]]["txt"] == b"two\nlines, with comma"
    assert packed[rows[2]["image"]]["txt"] == b"null"
    assert [(r["row"], r["reason"]) for r in _rejects(tmp_path / "out")] == [(1, "unreadable_row")]


def test_split_is_stable_when_rows_are_added_and_never_leaks(tmp_path):
    rows = _good_rows(tmp_path / "images", 40)
    _pack(tmp_path / "images", tmp_path / "a", _write_table(rows[:25], tmp_path / "a.jsonl"))
    _pack(tmp_path / "images", tmp_path / "b", _write_table(rows, tmp_path / "b.jsonl"))
    for out in ("a", "b"):
        train = {
            json.loads(m["json"])["image"]
            for _, m in iter_samples([tmp_path / out / "train-*.tar"])
        }
        held = [
            json.loads(line)
            for line in (tmp_path / out / "test_split.jsonl").read_text().splitlines()
        ]
        test = {line["image"] for line in held}
        assert train and test and not train & test
    before = {row["image"]: split_of(row["image"], 0, 0.3) for row in rows[:25]}
    after = _packed(tmp_path / "b")
    assert all(
        json.loads(after[image]["json"])["split"] == split for image, split in before.items()
    )
    assert split_of("x.jpg", 0, 0.3) == split_of("x.jpg", 0, 0.3)


def test_test_split_jsonl_lists_held_out_samples(tmp_path):
    rows = _good_rows(tmp_path / "images", 12)
    _pack(tmp_path / "images", tmp_path / "out", _write_table(rows, tmp_path / "t.jsonl"))
    held = [
        json.loads(line)
        for line in (tmp_path / "out" / "test_split.jsonl").read_text().splitlines()
    ]
    texts = {row["image"]: row["text"] for row in rows}
    test_keys = {key for key, _ in iter_samples([tmp_path / "out" / "test-*.tar"])}
    assert {line["key"] for line in held} == test_keys
    assert all(line["text"] == texts[line["image"]] for line in held)


def test_rerun_resumes_a_missing_shard_and_refuses_other_options_or_inputs(tmp_path):
    rows = _good_rows(tmp_path / "images", 10)
    table = _write_table(rows, tmp_path / "t.jsonl")
    out = tmp_path / "out"
    first = _pack(tmp_path / "images", out, table, shard_size=3)
    manifest = read_manifest(out)
    (out / "train-000001.tar").unlink()
    again = _pack(tmp_path / "images", out, table, shard_size=3)
    assert (again.shards_written, again.shards_resumed) == (1, first.shards_written - 1)
    assert read_manifest(out)["shards"] == manifest["shards"]
    with pytest.raises(TextimgError, match="other options \\(seed\\)"):
        _pack(tmp_path / "images", out, table, shard_size=3, seed=1)
    with pytest.raises(TextimgError, match="other inputs"):
        _pack(tmp_path / "images", out, _write_table(rows[:9], tmp_path / "u.jsonl"), shard_size=3)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(TextimgError, match="not empty"):
        _pack(tmp_path / "images", tmp_path / "other", table)


def test_output_does_not_depend_on_worker_count(tmp_path):
    rows = _good_rows(tmp_path / "images", 8)
    table = _write_table(rows, tmp_path / "t.jsonl")
    _pack(tmp_path / "images", tmp_path / "one", table, shard_size=3)
    pack(
        tmp_path / "images",
        tmp_path / "two",
        table,
        PackOptions(test_fraction=0.3, shard_size=3),
        workers=2,
    )
    assert read_manifest(tmp_path / "one")["shards"] == read_manifest(tmp_path / "two")["shards"]


def test_max_size_reencodes_only_larger_images_and_says_so(tmp_path):
    images = tmp_path / "images"
    _image(images / "big.jpg", 1, size=(64, 32))
    _image(images / "small.png", 2, size=(20, 10))
    _image(images / "anim.gif", 3, size=(40, 40), fmt="GIF")
    rows = [{"image": n, "text": n} for n in ("big.jpg", "small.png", "anim.gif")]
    _pack(images, tmp_path / "out", _write_table(rows, tmp_path / "t.jsonl"), max_size=32)
    packed = _packed(tmp_path / "out")
    big = json.loads(packed["big.jpg"]["json"])
    assert (big["width"], big["height"], big["resized"]["width"]) == (32, 16, 64)
    assert Image.open(io.BytesIO(packed["big.jpg"]["jpg"])).size == (32, 16)
    assert "resized" not in json.loads(packed["small.png"]["json"])
    assert packed["small.png"]["png"] == (images / "small.png").read_bytes()
    assert (
        "png" in packed["anim.gif"]
        and json.loads(packed["anim.gif"]["json"])["resized"]["format"] == "gif"
    )


def test_sidecar_layout_reads_name_txt_beside_each_image(tmp_path):
    images = tmp_path / "images"
    _image(images / "a.jpg", 1)
    (images / "a.txt").write_text("first\nsecond")
    _image(images / "deep/b.png", 2)
    (images / "deep/b.txt").write_text("")
    _image(images / "c.png", 3)  # no transcript
    _image(images / "d.png", 4)
    (images / "d.txt").write_bytes(b"\xff\xfe bad")
    (images / "orphan.txt").write_text("no image")
    result = _pack(images, tmp_path / "out", None, test_fraction=0.0)
    packed = _packed(tmp_path / "out")
    assert packed["a.jpg"]["txt"] == b"first\nsecond" and packed["deep/b.png"]["txt"] == b""
    assert result.packed == 2
    assert {(r["image"], r["reason"]) for r in _rejects(tmp_path / "out")} == {
        ("c.png", "missing_file"),
        ("d.png", "non_utf8_text"),
        ("orphan.txt", "missing_file"),
    }


def test_webdataset_reads_the_shards(tmp_path):
    rows = _good_rows(tmp_path / "images", 6)
    _pack(tmp_path / "images", tmp_path / "out", _write_table(rows, tmp_path / "t.jsonl"))
    urls = [str(path) for path in sorted((tmp_path / "out").glob("*.tar"))]
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("pil"))
    assert len(samples) == 6
    texts = {row["text"] for row in rows}
    for sample in samples:
        assert sample["txt"] in texts and "." not in sample["__key__"]
        image = next(sample[ext] for ext in ("jpg", "png", "webp", "gif") if ext in sample)
        assert image.size == (16, 12)


def test_load_packed_texts_returns_non_empty_train_transcripts(tmp_path):
    rows = _good_rows(tmp_path / "images", 14)
    _pack(tmp_path / "images", tmp_path / "out", _write_table(rows, tmp_path / "t.jsonl"))
    train_texts = [m["txt"].decode() for _, m in iter_samples([tmp_path / "out" / "train-*.tar"])]
    assert load_packed_texts(tmp_path / "out") == [text for text in train_texts if text.strip()]
    with pytest.raises(TextimgError, match="no shards"):
        load_packed_texts(tmp_path / "images")


def test_cli_packs_and_prints_a_summary(tmp_path):
    rows = _good_rows(tmp_path / "images", 4)
    table = _write_table(rows, tmp_path / "t.csv")
    args = ["pack", str(tmp_path / "images"), "-t", str(table), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--workers", "1", "--test-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    assert "packed (train)" in result.output and "held out (test)" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--transcripts", "missing.csv"], "missing.csv does not exist"),
        (["--transcripts", "TABLE", "--test-fraction", "1.5"], "--test-fraction must be between"),
        (["--transcripts", "TABLE", "--text-col", "caption"], "no column 'caption'"),
        (["--transcripts", "TABLE.txt"], "cannot tell the format"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, extra, message):
    table = _write_table(_good_rows(tmp_path / "images", 1), tmp_path / "t.jsonl")
    (tmp_path / "t.jsonl.txt").write_text("x")
    extra = [arg.replace("TABLE", str(table)) for arg in extra]
    args = ["pack", str(tmp_path / "images"), "--out", str(tmp_path / "out"), *extra]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})  # no wrapping by rich
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output


@pytest.mark.parametrize("workers", [1, 3])
def test_an_image_changed_after_verifying_stops_the_run_with_its_path(
    tmp_path, monkeypatch, workers
):
    """Shards are written by worker threads; an image rewritten between verifying and writing
    is caught by its hash in whichever thread writes it, and its shard is never completed."""
    import textimg.data.pack as packing

    rows = _good_rows(tmp_path / "images", 6)
    table = _write_table(rows, tmp_path / "t.jsonl")
    planned = packing._plan_shards

    def plan_then_change(*args, **kwargs):
        jobs = planned(*args, **kwargs)
        _image(tmp_path / "images" / rows[4]["image"], 99, fmt="PNG")
        return jobs

    monkeypatch.setattr(packing, "_plan_shards", plan_then_change)
    changed = re.escape(rows[4]["image"])
    with pytest.raises(TextimgError, match=f"{changed} changed while packing"):
        pack(tmp_path / "images", tmp_path / "out", table, PackOptions(shard_size=2), workers)
    manifest = read_manifest(tmp_path / "out")
    assert not manifest["complete"] and len(manifest["shards"]) < len(manifest["planned_shards"])
