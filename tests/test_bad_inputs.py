"""Every bad input is one `Error:` line and a non-zero exit, checked before any work; a run that
did no useful work never exits 0; a user's file is never replaced without --overwrite; a prompt
that is not text is a row with a status, never scored as something else.

One parametrized row per case, through `CliRunner`, or through a subprocess where the operating
system must refuse the write (a read-only folder, a file-size limit standing in for a full disk).
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_evaluate import make_checkpoint
from test_reader import make_shards
from typer.testing import CliRunner

from textimg.cli import app
from textimg.data.shards import iter_samples, shard_name, write_shard

torch.set_num_threads(1)
runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # rich must not wrap the one line


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    """The inputs the rows refer to as {name}; each row also gets a fresh {tmp}."""
    root = tmp_path_factory.mktemp("bad")
    jsonl = {
        "one": [{"key": "a", "text": "ab"}],
        "null": [{"key": "a", "text": None}, {"key": "b", "text": None}],
        "empty_table": [],
    }
    for name, rows in jsonl.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (root / "latin1.txt").write_bytes("caf\u00e9\n".encode("latin-1"))
    (root / "latin1.jsonl").write_bytes('{"key": "a", "text": "caf\u00e9"}\n'.encode("latin-1"))
    (root / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "empty.pt").write_bytes(b"")
    (root / "a-file").write_text("not a folder")
    (root / "a-folder.png").mkdir()
    (root / "images").mkdir()
    Image.new("L", (32, 32), 255).save(root / "images" / "blank.png")
    return {
        "root": root,
        "ckpt": make_checkpoint(root / "ckpt" / "checkpoint.pt", seed=0),
        "data": make_shards(root / "data", "synth", shards=1, per_shard=8),
        "shards": make_shards(root / "shards", "s", shards=1, per_shard=2, texts=["ab", "cd"]),
        **{name: root / f"{name}.jsonl" for name in jsonl},
        **{name: root / name for name in ("latin1.txt", "latin1.jsonl", "random.pt", "empty.pt")},
        **{name: root / name for name in ("a-file", "a-folder.png", "images")},
    }


def filled(args: list[str], paths: dict[str, Path], tmp: Path) -> list[str]:
    """`args` with each {name} replaced by that input's path and {tmp} by the row's own folder."""
    filled = []
    for arg in args:
        for name, path in {**paths, "tmp": tmp}.items():
            arg = arg.replace("{" + name + "}", str(path))
        filled.append(arg)
    return filled


no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there to be used")
TRAIN = ["train", "tiny", "--data", "{data}", "-o", "{tmp}/run", "--device", "cpu"]
EVAL = ["eval", "{ckpt}", "--samples", "1", "--steps", "1", "--device", "cpu"]
SCORE = ["score", "{shards}", "--cache-dir", "{tmp}/cache"]  # the cache appears once OCR loads
SAMPLE = ["sample", "{ckpt}", "--steps", "1", "--device", "cpu"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([*TRAIN, "--steps", "0"], "'--steps'", id="train-steps-0"),
        pytest.param([*TRAIN, "--batch-size", "0"], "'--batch-size'", id="train-batch-size-0"),
        pytest.param(
            ["train", "tiny", "--data", "{data}", "-o", "{a-file}"],
            "a-file is a file, not a folder",
            id="train-out-is-a-file",
        ),
        pytest.param(
            [*EVAL, "--prompts", "{null}", "-o", "{tmp}/ev"],
            "no image was scored: every prompt failed",
            id="eval-every-prompt-failed",
        ),
        pytest.param(
            [*EVAL, "--prompts", "{one}", "-o", "{tmp}/ev", "--sr", "{ckpt}"],
            "not a super-resolution model",
            id="eval-base-checkpoint-as-sr",
        ),
        pytest.param(
            [*EVAL, "--prompts", "{one}", "-o", "{a-file}", "--cache-dir", "{tmp}/cache"],
            "a-file is a file, not a folder",
            id="eval-out-is-a-file",
        ),
        pytest.param(
            ["eval", "{random.pt}", "--prompts", "{one}", "-o", "{tmp}/ev"],
            "random.pt is not a readable textimg checkpoint (truncated",
            id="eval-random-bytes-checkpoint",
        ),
        pytest.param(
            ["sample", "{random.pt}", "--prompt", "a", "-o", "{tmp}/x.png"],
            "random.pt is not a readable textimg checkpoint (truncated",
            id="sample-random-bytes-checkpoint",
        ),
        pytest.param(
            ["sample", "{empty.pt}", "--prompt", "a", "-o", "{tmp}/x.png"],
            "empty.pt is empty (0 bytes)",
            id="sample-zero-byte-checkpoint",
        ),
        pytest.param(
            [*SAMPLE[:2], "--prompt", "a", "-o", "{tmp}/x.png", "--device", "cuda"],
            "no CUDA device is available",
            id="sample-cuda-without-a-gpu",
            marks=no_gpu,
        ),
        pytest.param(
            [*SAMPLE, "--prompts", "{latin1.txt}", "-o", "{tmp}/x.png"],
            "latin1.txt:1: not UTF-8 text",
            id="sample-non-utf8-prompts",
        ),
        pytest.param(
            [*SAMPLE, "--prompt", "a", "-o", "{a-file}"],
            "a-file is a file, not a folder",
            id="sample-out-folder-is-a-file",
        ),
        pytest.param(
            [*SAMPLE, "--prompt", "a", "-o", "{a-folder.png}"],
            "a-folder.png is a folder, not a file",
            id="sample-out-grid-is-a-folder",
        ),
        pytest.param(
            [*SAMPLE, "--prompt", "a", "-o", "{a-file}/below.png"],
            "a-file is a file, not a folder",
            id="sample-out-below-a-file",
        ),
        pytest.param(
            [*SCORE, "--prompts", "{null}", "-o", "{tmp}/sc"],
            "null.jsonl:1: key 'a' has no text",
            id="score-null-text",
        ),
        pytest.param(
            [*SCORE, "--prompts", "{latin1.jsonl}", "-o", "{tmp}/sc"],
            "latin1.jsonl:1: not UTF-8 text",
            id="score-non-utf8-prompts",
        ),
        pytest.param(
            [*SCORE, "-o", "{a-file}"], "a-file is a file, not a folder", id="score-out-is-a-file"
        ),
        pytest.param(
            ["transcribe", "{images}", "-o", "{a-folder.png}", "--cache-dir", "{tmp}/cache"],
            "a-folder.png is a folder, not a file",
            id="transcribe-out-is-a-folder",
        ),
        pytest.param(
            ["pack", "{images}", "-t", "{empty_table}", "-o", "{tmp}/pk"],
            "nothing packed",
            id="pack-empty-table",
        ),
        pytest.param(
            ["preview", "{shards}", "-o", "{tmp}/p.png", "--columns", "0"],
            "'--columns'",
            id="preview-columns-0",
        ),
        pytest.param(
            ["preview", "{shards}", "-o", "{tmp}/p.png", "--cell", "0"],
            "'--cell'",
            id="preview-cell-0",
        ),
        pytest.param(
            ["export", "{ckpt}", "-o", "{a-file}"],
            "a-file is a file, not a folder",
            id="export-out-is-a-file",
        ),
    ],
)
def test_bad_input_is_one_error_line_and_a_failed_exit(
    args: list[str], message: str, paths: dict[str, Path], tmp_path: Path
) -> None:
    result = runner.invoke(app, filled(args, paths, tmp_path), env=WIDE)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0, result.output
    assert lines and lines[-1].startswith("Error: ") and message in lines[-1], result.output
    assert sum(line.startswith("Error: ") for line in lines) == 1
    assert "Traceback" not in result.output and "weights_only" not in result.output
    assert not (tmp_path / "cache").exists(), "refused before the OCR engine was loaded"
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            [*TRAIN, "--steps", "1", "--batch-size", "2", "--set", "train.checkpoint_every=0"],
            id="every-0",
        )
    ],
)
def test_zero_checkpoint_interval_means_only_at_the_end(args, paths, tmp_path) -> None:
    """`train.checkpoint_every=0` is no crash: the run checkpoints at its last step only."""
    result = runner.invoke(app, filled(args, paths, tmp_path), env=WIDE)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_transcribe_never_replaces_a_file_without_overwrite(paths, tmp_path) -> None:
    existing = tmp_path / "transcripts.jsonl"
    existing.write_text("hand-corrected\n")
    args = ["transcribe", str(paths["images"]), "-o", str(existing), "--no-cache"]
    refused = runner.invoke(app, args, env=WIDE)
    assert refused.exit_code == 1 and "exists; pass --overwrite" in refused.output
    assert existing.read_text() == "hand-corrected\n"
    replaced = runner.invoke(app, [*args, "--overwrite"], env=WIDE)
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(existing.read_text().splitlines()[0])["image"] == "blank.png"
    assert "{" not in replaced.output, "counts as plain text, not a dict"


def test_prompts_that_are_not_text_are_rows_with_a_status(paths, tmp_path) -> None:
    """In `eval`, a null text or a non-UTF-8 line is a `bad_prompt_line` row, never scored as an
    empty prompt or against U+FFFD; the good line beside them is scored."""
    prompts = tmp_path / "mixed.jsonl"
    good = json.dumps({"key": "good", "text": "ab"}).encode()
    null = json.dumps({"key": "null", "text": None}).encode()
    prompts.write_bytes(
        b"\n".join([good, null, '{"key": "x", "text": "\u00e9"}'.encode("latin-1")])
    )
    args = ["eval", str(paths["ckpt"]), "--prompts", str(prompts), "-o", str(tmp_path / "ev")]
    result = runner.invoke(app, [*args, "--samples", "1", "--steps", "1", "--no-cache"], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "ev" / "ckpt" / "results.csv").set_index("key")
    assert rows.loc["good", "status"] == "ok" and not np.isnan(rows.loc["good", "trigram"])
    bad = rows.drop(index="good")
    assert list(bad["status"]) == ["bad_prompt_line"] * 2 and bad["trigram"].isna().all()
    assert "has no text" in bad.loc["line-2", "error"]
    assert "not UTF-8" in bad.loc["line-3", "error"]


def test_a_shard_transcript_that_is_not_utf8_is_a_status(paths, tmp_path) -> None:
    samples = list(iter_samples([paths["shards"]]))
    (key, members), rest = samples[0], samples[1:]
    broken = [(key, {**members, "txt": "caf\u00e9".encode("latin-1")}), *rest]
    (tmp_path / "shards").mkdir()
    write_shard(tmp_path / "shards" / shard_name("s", 0), broken)
    args = ["score", str(tmp_path / "shards"), "-o", str(tmp_path / "sc"), "--no-cache"]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "sc" / "results.csv").set_index("key")
    assert rows.loc[key, "status"] == "bad_prompt" and np.isnan(rows.loc[key, "trigram"])
    assert "{'" not in result.output, "statuses as plain text, not a dict"


def test_sample_jsonl_prompts_draw_their_text_and_a_jpg_out_is_a_file(paths, tmp_path) -> None:
    """`sample --prompts test_split.jsonl` draws each line's `text`, not the raw JSON line; an
    --out ending in .jpg is one grid image, not a folder named x.jpg."""
    split = tmp_path / "test_split.jsonl"
    split.write_text(json.dumps({"key": "k", "text": "ab"}) + "\n")
    for name, source in (("x.jpg", ["--prompts", str(split)]), ("y.jpg", ["--prompt", "ab"])):
        result = runner.invoke(app, ["sample", str(paths["ckpt"]), *source, "--steps", "1",
                                     "--device", "cpu", "-o", str(tmp_path / name)])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).is_file()
    assert Image.open(tmp_path / "x.jpg").format == "JPEG"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.jpg")),
                          np.asarray(Image.open(tmp_path / "y.jpg")))  # fmt: skip


def run_textimg(args: list[str], **options) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "textimg", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, **options)


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder that refuses new files: mode 0555, or for root (whom modes do not stop) a folder
    under sysfs, where the kernel refuses to create anything."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs to stand in for a read-only folder as root")
    yield Path("/sys/kernel/textimg-out")


def test_a_read_only_output_folder_is_one_error_line(paths, read_only_folder) -> None:
    sheet = read_only_folder / "sheet.png"
    result = runner.invoke(app, ["preview", str(paths["shards"]), "-o", str(sheet)], env=WIDE)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert str(read_only_folder) in lines[0] and "Traceback" not in result.output
    assert not sheet.exists()


def _limit_file_size() -> None:
    """Writes past 1 KiB fail with EFBIG, as a full disk fails them with ENOSPC."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_full_disk_is_one_error_line_and_leaves_no_partial_file(paths, tmp_path) -> None:
    sheet = tmp_path / "sheet.png"
    args = ["preview", paths["shards"], "-o", sheet, "--cell", "256"]
    result = run_textimg(args, preexec_fn=_limit_file_size)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: File too large"), result.stderr
    assert "free some space or write somewhere else" in lines[0]
    assert list(tmp_path.glob("sheet.png*")) == []


def test_easyocr_commands_print_no_quantization_warning(paths, tmp_path) -> None:
    args = ["transcribe", paths["images"], "-o", tmp_path / "t.jsonl", "--engine", "easyocr"]
    result = run_textimg([*args, "--no-cache"])
    assert result.returncode == 0, result.stderr
    assert "quantize" not in result.stderr and "Warning" not in result.stderr


def huge_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A PNG whose header claims `width` x `height` pixels over one pixel of data: what a
    decompression bomb looks like to a reader, without the memory to make a real one."""
    import io
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("L", (1, 1), 0).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


@pytest.fixture(scope="module")
def broken_shards(tmp_path_factory) -> Path:
    """One shard: a readable sample, a truncated PNG, a 20000x20000 PNG, another readable one."""
    from test_reader import encoded, text_image

    folder = tmp_path_factory.mktemp("broken")
    good = encoded(text_image("ab"))
    samples = [
        ("k0", {"png": good, "txt": b"ab"}),
        ("k1", {"png": good[: len(good) // 2], "txt": b"cut"}),
        ("k2", {"png": huge_png(), "txt": b"huge"}),
        ("k3", {"png": good, "txt": b"cd"}),
    ]
    write_shard(folder / shard_name("s", 0), samples)
    return folder


def test_preview_names_each_unreadable_sample_and_draws_the_rest(broken_shards, tmp_path) -> None:
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(app, ["preview", str(broken_shards), "-o", str(sheet)], env=WIDE)
    assert result.exit_code == 0, result.output
    shard = broken_shards / shard_name("s", 0)
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 2 and all(str(shard) in line for line in skipped), result.output
    assert "sample k1: not a readable image" in skipped[0]
    assert "sample k2: too large to decode safely" in skipped[1]
    assert "wrote" in result.output and "(2 samples)" in result.output and sheet.is_file()


def test_training_on_a_shard_with_a_huge_image_is_one_error_line(broken_shards, tmp_path) -> None:
    from textimg.config import DataConfig
    from textimg.data.reader import ShardStream
    from textimg.errors import TextimgError

    config = DataConfig(shards=(str(broken_shards),), shuffle_buffer=1)
    stream = ShardStream(config, image_size=16, image_channels=1, batch_size=4, seed=0)
    with pytest.raises(
        TextimgError, match=r"sample k[12] in the shards of .*: (not a readable|too large)"
    ):
        next(iter(stream))


def test_a_cache_dir_variable_naming_a_file_is_one_error_line(paths, tmp_path) -> None:
    cache = tmp_path / "cache-file"
    cache.write_text("mine")
    env = {**os.environ, "TEXTIMG_CACHE_DIR": str(cache)}
    result = run_textimg(["transcribe", paths["images"], "-o", tmp_path / "t.jsonl"], env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert (
        lines[0].startswith("Error: TEXTIMG_CACHE_DIR=") and "is a file, not a folder" in lines[0]
    )
    assert cache.read_text() == "mine"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [("x" * 40, "longer than the model's 14 characters are cut to fit"),
     ("caf\u00e9 \u6f22\U0001f600", "characters the model's vocabulary lacks")],
)  # fmt: skip
def test_prompts_the_model_cannot_read_whole_are_one_warning_line(
    paths, tmp_path, prompt: str, expected: str
) -> None:
    out = tmp_path / "grid.png"
    args = [
        "sample",
        paths["ckpt"],
        "--prompt",
        prompt,
        "--steps",
        "1",
        "--device",
        "cpu",
        "-o",
        out,
    ]
    result = run_textimg(args)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and expected in warnings[0], result.stderr
    assert "UserWarning" not in result.stderr and out.is_file()


def test_a_run_folder_with_a_non_ascii_name_reads_everywhere(paths, tmp_path) -> None:
    from test_evaluate import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "caf\u00e9" / "checkpoint.pt", seed=0)
    sampled = runner.invoke(app, ["sample", str(checkpoint), "--prompt", "ab", "--steps", "1",
                                  "--device", "cpu", "-o", str(tmp_path / "g.png")])  # fmt: skip
    assert sampled.exit_code == 0, sampled.output
    exported = runner.invoke(app, ["export", str(checkpoint), "-o", str(tmp_path / "exp")])
    assert exported.exit_code == 0, exported.output


# --- synth texts and font sizes; the OCR cache --------------------------------------------------

UNDRAWABLE = (
    "\U0001f600\U0001f600 \U0001f389\n\u6f22\u5b57 \u30c6\u30b9\u30c8\n\u05e9\u05dc\u05d5\u05dd\n"
)
SYNTH_SMALL = ["synth", "--n", "4", "--shard-size", "4", "--size", "64", "--workers", "1"]


def synth_in_seconds(args: list, seconds: float = 30) -> subprocess.CompletedProcess:
    """`textimg synth ...` in a subprocess, failing the test unless it ends within `seconds`."""
    from time import perf_counter

    started = perf_counter()
    result = run_textimg([*SYNTH_SMALL, *args])
    assert perf_counter() - started < seconds, f"synth took over {seconds} s: {result.stderr}"
    return result


def test_synth_texts_no_font_can_draw_are_refused_in_seconds(tmp_path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text(UNDRAWABLE)
    result = synth_in_seconds(["-o", tmp_path / "out", "--text-file", texts])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"Error: no line of --text-file {texts}")
    assert "line 1 " in lines[0] and "line 3 " in lines[0] and "printable ASCII" in lines[0]
    assert texts.read_text() == UNDRAWABLE and not (tmp_path / "out").exists()


def test_synth_leaves_out_the_lines_no_font_can_draw_and_lists_them(tmp_path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("hello world\n" + UNDRAWABLE + "foo bar\n")
    out = tmp_path / "out"
    result = synth_in_seconds(["-o", out, "--text-file", texts])
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "3 of 5 lines of --text-file" in warnings[0], result.stderr
    rejects = [json.loads(row) for row in (out / "rejected-texts.jsonl").read_text().splitlines()]
    assert [row["line"] for row in rejects] == [2, 3, 4]
    assert rejects[0]["missing"] == "\U0001f600\U0001f389"
    assert {s for _, m in iter_samples(sorted(out.glob("*.tar"))) for s in [m["txt"]]} <= {
        b"hello world",
        b"foo bar",
        b"hello\nworld",
        b"foo\nbar",
    }
    assert texts.read_text() == "hello world\n" + UNDRAWABLE + "foo bar\n"


def test_synth_a_ten_thousand_character_word_finishes_in_seconds(tmp_path) -> None:
    texts = tmp_path / "word.txt"
    texts.write_text("a" * 10_000 + "\n")
    result = synth_in_seconds(["-o", tmp_path / "out", "--text-file", texts])
    assert result.returncode == 0, result.stderr
    assert len(list(iter_samples(sorted((tmp_path / "out").glob("*.tar"))))) == 4


def test_synth_a_min_font_size_larger_than_the_image_names_min_font_px(tmp_path) -> None:
    args = ["synth", "-o", str(tmp_path / "out"), "--min-font-px", "100", "--size", "64"]
    result = runner.invoke(app, args, env=WIDE)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert lines == ["Error: --min-font-px 100 does not fit --size 64: give 6..58 px "
                     "(the text area inside the margins)"]  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_corrupt_ocr_cache_is_set_aside_and_rebuilt(paths, tmp_path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    garbage = b"not a database" * 100
    (cache / "ocr.sqlite").write_bytes(garbage)
    args = ["transcribe", paths["images"], "-o", tmp_path / "t.jsonl", "--cache-dir", cache]
    result = run_textimg(args)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "set aside as ocr.sqlite.corrupt-1" in warnings[0]
    assert (cache / "ocr.sqlite.corrupt-1").read_bytes() == garbage
    again = run_textimg(args[:-2] + ["--cache-dir", cache, "-o", tmp_path / "u.jsonl"])
    assert again.returncode == 0 and "Warning" not in again.stderr, again.stderr


def test_a_read_only_home_scores_without_the_cache_and_names_no_cache(
    paths, tmp_path, read_only_folder
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TEXTIMG_CACHE_DIR", "XDG_CACHE_HOME")}
    args = ["score", paths["shards"], "-o", tmp_path / "sc"]
    result = run_textimg(args, env={**env, "HOME": str(read_only_folder)})
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "--no-cache" in warnings[0], result.stderr
    assert "reading without it" in warnings[0] and (tmp_path / "sc" / "results.csv").is_file()


# ---- inputs: numbers, seeds, paths, prompt files and image folders -------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["sample", "{ckpt}", "--prompt", "ab", "-o", "{tmp}/g.png", "--guidance", "nan"],
            "--guidance must be a finite number",
            id="guidance-nan",
        ),  # fmt: skip
        pytest.param(
            [*TRAIN, "--data", "{data}=inf"],
            "the weight must be a finite number",
            id="data-weight-inf",
        ),  # fmt: skip
        pytest.param(
            [*TRAIN, "--set", "data.weights=[inf]"], "data.weights must be finite", id="set-inf"
        ),  # fmt: skip
        pytest.param(
            [*SCORE, "-o", "{tmp}/sc", "--min-confidence", "nan"],
            "--min-confidence must be a finite number",
            id="score-nan",
        ),  # fmt: skip
        pytest.param(
            ["sample", "{ckpt}", "--prompt", "ab", "-o", "{tmp}/g.png", "--seed", str(2**64)],
            "--seed must be between -9223372036854775808 and 9223372036854775807",
            id="sample-seed-too-large",
        ),  # fmt: skip
        pytest.param(
            [*TRAIN, "--seed", str(-(2**70))], "--seed must be between", id="train-seed-too-large"
        ),  # fmt: skip
        pytest.param(
            ["sample", "{ckpt}", "--prompts", "{images}", "-o", "{tmp}/g.png"],
            "images is a folder",
            id="sample-prompts-folder",
        ),  # fmt: skip
        pytest.param(
            [*EVAL, "--prompts", "{images}", "-o", "{tmp}/ev"],
            "images is a folder",
            id="eval-prompts-folder",
        ),  # fmt: skip
    ],
)
def test_bad_numbers_seeds_and_prompt_paths_are_one_error_line(
    args: list[str], message: str, paths: dict[str, Path], tmp_path: Path
) -> None:
    test_bad_input_is_one_error_line_and_a_failed_exit(args, message, paths, tmp_path)


def test_every_path_float_and_seed_parameter_is_parsed_by_the_shared_parser() -> None:
    """One rule per kind of value: a new option that forgets it fails here, not for a user."""
    import inspect
    import typing

    from textimg.cli import options

    for command in app.registered_commands:
        hints = typing.get_type_hints(command.callback, include_extras=True)
        for name, hint in hints.items():
            if name == "return":
                continue
            info = next(m for m in typing.get_args(hint)[1:] if hasattr(m, "parser"))
            kinds = set(typing.get_args(typing.get_args(hint)[0])) | {typing.get_args(hint)[0]}
            where = f"{command.callback.__name__} {name}"
            if Path in kinds or list[Path] in kinds or list[Path] | None in kinds:
                assert info.parser is options.user_path, where
            if float in kinds or name == "seed":
                assert inspect.getclosurevars(info.parser).nonlocals.get("option"), where


def test_a_literal_tilde_out_is_the_home_folder_everywhere(paths, tmp_path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    prompts = tmp_path / "p.txt"
    prompts.write_text("ab\n")
    (tmp_path / "imgs").mkdir()
    Image.new("L", (32, 32), 255).save(tmp_path / "imgs" / "line-1.png")
    env = {**os.environ, "HOME": str(home)}
    args = ["score", tmp_path / "imgs", "--prompts", prompts, "-o", "~/x", "--no-cache"]
    result = run_textimg(args, cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert (home / "x" / "results.csv").is_file() and (home / "x" / "summary.json").is_file()
    assert not list(work.iterdir()), "no folder named ~ beside the command"
    assert not [p for p in home.rglob("*") if ".tmp" in p.name]


def _sample_grid(paths, out: Path, source: list[str]) -> np.ndarray:
    args = ["sample", str(paths["ckpt"]), *source, "--steps", "1", "--device", "cpu", "-o"]
    result = runner.invoke(app, [*args, str(out)], env=WIDE)
    assert result.exit_code == 0, result.output
    return np.asarray(Image.open(out))


def test_ndjson_and_bom_prompts_draw_their_text(paths, tmp_path) -> None:
    from textimg.data.pack_sources import read_table

    expected = _sample_grid(paths, tmp_path / "plain.png", ["--prompt", "ab"])
    row = json.dumps({"key": "k", "text": "ab"}) + "\n"
    for name in ("p.ndjson", "bom.jsonl"):
        (tmp_path / name).write_text(("\ufeff" if name.startswith("bom") else "") + row)
        before = (tmp_path / name).read_bytes()
        grid = _sample_grid(paths, tmp_path / f"{name}.png", ["--prompts", str(tmp_path / name)])
        assert np.array_equal(grid, expected), name
        assert (tmp_path / name).read_bytes() == before
    table = tmp_path / "t.jsonl"
    table.write_text("\ufeff" + json.dumps({"image": "a.png", "text": "ab"}) + "\n")
    [first] = read_table(table, "image", "text")
    assert first.problem is None and first.text == "ab"


def test_prompts_from_a_pipe_are_read(paths, tmp_path) -> None:
    expected = _sample_grid(paths, tmp_path / "plain.png", ["--prompt", "ab"])
    command = (f"{sys.executable} -m textimg sample {paths['ckpt']} --prompts <(echo ab) "
               f"--steps 1 --device cpu -o {tmp_path / 'piped.png'}")  # fmt: skip
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "piped.png")), expected)


def _sixteen_bit_text(path: Path, text: str = "HELLO") -> Path:
    """Dark `text` on white as a 16-bit grayscale PNG (`I;16`), which OCR reads only when the
    reader scales it to 8 bits rather than clipping every value to white."""
    from PIL import ImageDraw

    from textimg.images import _caption_font

    image = Image.new("L", (160, 48), 255)
    font = _caption_font().font_variant(size=28)
    ImageDraw.Draw(image).text((8, 8), text, fill=0, font=font)
    wide = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    wide.save(path)
    assert Image.open(path).mode.startswith("I;16")
    return path


def test_sixteen_bit_images_are_read_by_score_transcribe_and_pack(tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    image = _sixteen_bit_text(folder / "k.png")
    before = image.read_bytes()
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"key": "k", "text": "HELLO"}) + "\n")
    scored = runner.invoke(app, ["score", str(folder), "--prompts", str(prompts), "-o",
                                 str(tmp_path / "sc"), "--no-cache"], env=WIDE)  # fmt: skip
    assert scored.exit_code == 0, scored.output
    rows = pd.read_csv(tmp_path / "sc" / "results.csv", dtype=str, keep_default_na=False)
    assert rows.loc[0, "transcript"].upper().replace(" ", "") == "HELLO"
    out = tmp_path / "t.jsonl"
    read = runner.invoke(app, ["transcribe", str(folder), "-o", str(out), "--no-cache"], env=WIDE)
    assert read.exit_code == 0, read.output
    assert json.loads(out.read_text())["text"].upper().replace(" ", "") == "HELLO"
    (folder / "k.txt").write_text("HELLO")
    pack = ["pack", str(folder), "-o", str(tmp_path / "pk"), "--max-size", "80"]
    packed = runner.invoke(app, [*pack, "--workers", "1", "--test-fraction", "0"], env=WIDE)
    assert packed.exit_code == 0, packed.output
    [(_, members)] = list(iter_samples([tmp_path / "pk"]))
    pixels = np.asarray(Image.open(io.BytesIO(members["png"])).convert("L"))
    assert pixels.min() < 64, "the text survives re-encoding, not a white page"
    assert image.read_bytes() == before


def test_two_images_sharing_a_key_are_refused_naming_both(tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("L", (32, 32), 255).save(folder / "good.png")
    Image.new("RGB", (32, 32), "white").save(folder / "good.jpg")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"key": "good", "text": "ab"}) + "\n")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    args = ["score", str(folder), "--prompts", str(prompts), "-o", str(tmp_path / "sc")]
    result = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "cache")], env=WIDE)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "good.jpg and good.png" in lines[0] and "share the key 'good'" in lines[0]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (tmp_path / "sc").exists()


@pytest.mark.parametrize("command", ["score", "transcribe"])
def test_a_file_name_that_is_not_utf8_is_one_error_line(tmp_path, command: str) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("L", (32, 32), 255).save(os.fsdecode(bytes(folder) + b"/caf\xe9.png"))
    prompts = tmp_path / "p.txt"
    prompts.write_text("ab\n")
    extra = ["--prompts", str(prompts)] if command == "score" else []
    out = tmp_path / ("sc" if command == "score" else "t.jsonl")
    result = run_textimg([command, folder, *extra, "-o", out, "--cache-dir", tmp_path / "c"],
                         env={**os.environ, "COLUMNS": "400"})  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "'caf\\\\xe9.png' is not UTF-8" in lines[0]
    assert not out.exists()


def test_eval_summary_counts_prompts_cut_or_with_unknown_characters(paths, tmp_path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("ab\n" + "x" * 40 + "\ncaf\u00e9 \U0001f600\n")
    args = [*filled(EVAL, paths, tmp_path), "--prompts", str(prompts), "-o", str(tmp_path / "e")]
    result = runner.invoke(app, [*args, "--no-cache"], env=WIDE)
    assert result.exit_code == 0, result.output
    counts = json.loads((tmp_path / "e" / "ckpt" / "summary.json").read_text())["counts"]
    assert counts["truncated_prompts"] == 1 and counts["unknown_character_prompts"] == 1


# recipes, model levels, metrics at resume, memory in sample, prompt warnings
QUICK = ["--set", "model.image_size=16", "--set", "model.model_channels=16",
         "--set", "model.channel_mult=[1, 2]", "--set", "model.text_resolutions=[8]",
         "--set", "train.sample_every=0", "--batch-size", "2"]  # fmt: skip
BAD_RECIPES = {
    "latin1.toml": b"[train]\n# caf\xe9\n",
    "extends-5.toml": b"extends = 5\n",
    "model-3.toml": b'extends = "tiny"\nmodel = 3\n',
}


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The command's one `Error:` line, its last (train names its recipe first)."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and lines[-1].startswith("Error: "), result.output
    assert sum(line.startswith("Error: ") for line in lines) == 1
    assert "Traceback" not in result.output
    return lines[-1]


@pytest.mark.parametrize(
    ("recipe", "overrides", "message"),
    [
        ("tiny", ["model.text_resolutions=[3]"], "model.text_resolutions names [3], which this "
         "model has no level of; its levels are [32, 16, 8]"),
        ("tiny", ["model.attention_resolutions=[64]"], "model.attention_resolutions names [64]"),
        ("tiny-sr", ["model.text_resolutions=[128]"], "its levels are [64, 32, 16, 8]"),
        ("{tmp}/latin1.toml", [], "latin1.toml is not UTF-8 text (byte 0xe9 at offset 13)"),
        ("{tmp}/extends-5.toml", [], "extends-5.toml: extends = 5 must be a recipe name"),
        ("{tmp}/model-3.toml", [], "model-3.toml: model = 3 is not a section; write its"),
    ],
)  # fmt: skip
def test_a_level_the_model_lacks_or_a_malformed_recipe_is_one_error_line(
    paths, tmp_path, recipe: str, overrides: list[str], message: str
) -> None:
    for name, text in BAD_RECIPES.items():
        (tmp_path / name).write_bytes(text)
    sets = [item for setting in overrides for item in ("--set", setting)]
    args = filled([*TRAIN[:1], recipe, *TRAIN[2:], *sets], paths, tmp_path)
    assert message in one_error_line(runner.invoke(app, args, env=WIDE))
    assert not (tmp_path / "run").exists()
    assert all((tmp_path / name).read_bytes() == text for name, text in BAD_RECIPES.items())


def test_a_recipe_name_and_its_extends_resolve_from_any_folder(paths, tmp_path, monkeypatch):
    """`train demo` beside a `demo/` folder (what `textimg demo --out demo` leaves) trains the
    shipped recipe; `extends = "parent.toml"` is the file beside the recipe, from anywhere."""
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "result.json").write_text("{}")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "parent.toml").write_text('extends = "tiny"\n')
    (tmp_path / "mine" / "child.toml").write_text('extends = "parent.toml"\n')
    monkeypatch.chdir(tmp_path)
    for recipe in ("demo", "mine/child.toml"):
        result = runner.invoke(app, ["train", recipe, "--dry-run"], env=WIDE)
        assert result.exit_code == 0 and "Error" not in result.output, result.output
    assert [p.name for p in (tmp_path / "demo").iterdir()] == ["result.json"]


def test_resume_keeps_the_whole_metrics_lines_and_drops_a_cut_one(paths, tmp_path) -> None:
    """A kill in the middle of a `metrics.jsonl` write leaves half a line: the resumed run keeps
    the whole lines as they were and logs its steps after them."""
    args = [*filled(TRAIN, paths, tmp_path), *QUICK, "--set", "train.checkpoint_every=2"]
    started = runner.invoke(app, [*args, "--steps", "2"], env=WIDE)
    assert started.exit_code == 0, started.output
    metrics = tmp_path / "run" / "metrics.jsonl"
    whole = metrics.read_bytes()
    metrics.write_bytes(whole + b'{"step": 3, "lo')
    resumed = runner.invoke(app, [*args, "--steps", "3", "--resume"], env=WIDE)
    assert resumed.exit_code == 0 and "Traceback" not in resumed.output, resumed.output
    assert metrics.read_bytes().startswith(whole)
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [1, 2, 3]
    metrics.write_bytes(b"not json\n" + whole)
    refused = runner.invoke(app, [*args, "--steps", "4", "--resume"], env=WIDE)
    assert "metrics.jsonl:1 is not a metrics line of textimg" in one_error_line(refused)
    assert metrics.read_bytes() == b"not json\n" + whole


@pytest.mark.parametrize(
    "failure",
    [
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes"),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    ],
    ids=["cpu", "cuda"],
)
def test_running_out_of_memory_in_sample_is_one_error_line(
    paths, tmp_path, monkeypatch, failure: Exception
) -> None:
    import textimg.sampling

    real = textimg.sampling.sample

    def allocation_fails_above_100(model, diffusion, prompts, *args, **kwargs):  # type: ignore[no-untyped-def]
        if len(prompts) > 100:  # memory for 100 images at once, not more
            raise failure
        return real(model, diffusion, prompts, *args, **kwargs)

    monkeypatch.setattr(textimg.sampling, "sample", allocation_fails_above_100)
    args = [*SAMPLE, "--prompt", "ab", "--prompt", "cd", "--samples", "500", "-o", "{tmp}/g.png"]
    line = one_error_line(runner.invoke(app, filled(args, paths, tmp_path), env=WIDE))
    assert "out of memory on cpu drawing 1000 images at once (2 prompt(s) x --samples 500)" in line
    assert "about 62 fit" in line, "1000 halved until one step fits: 500, 250, 125, 62"
    assert "lower --samples" in line and not (tmp_path / "g.png").exists()


def test_eval_of_a_prompt_longer_than_the_model_reads_prints_no_python_warning(
    paths, tmp_path
) -> None:
    prompts = tmp_path / "long.jsonl"
    prompts.write_text(json.dumps({"key": "k", "text": "x" * 40}) + "\n")
    args = [*filled(EVAL, paths, tmp_path), "--prompts", prompts, "-o", tmp_path / "ev"]
    result = run_textimg([*args, "--no-cache"])
    assert result.returncode == 0, result.stderr
    assert "UserWarning" not in result.stderr and "warnings.warn" not in result.stderr
    assert json.loads(prompts.read_text())["text"] == "x" * 40


# Data loss: a writer replaces only its own run's results unless --overwrite, and holds its folder.


def _one_error(result, message: str) -> None:
    """A refusal: a failed exit and one `Error:` line holding `message`."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert sum(line.startswith("Error: ") for line in lines) == 1, result.output
    assert lines[-1].startswith("Error: ") and message in lines[-1], result.output


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


TRAIN_ONE = [*TRAIN, "--steps", "1", "--batch-size", "2"]


def test_train_never_replaces_files_of_another_run_without_overwrite(paths, tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"mine": true}\n')
    (run / "metrics.jsonl").write_text('{"step": 5, "loss": 1.0}\n')
    before = _contents(run)
    refused = runner.invoke(app, filled(TRAIN_ONE, paths, tmp_path), env=WIDE)
    _one_error(refused, "already holds config.json, which this run did not write; pass --resume")
    assert _contents(run) == before
    (run / "config.json").unlink()
    _one_error(runner.invoke(app, filled(TRAIN_ONE, paths, tmp_path), env=WIDE),
               "already holds metrics.jsonl")  # fmt: skip
    assert (run / "metrics.jsonl").read_bytes() == before["metrics.jsonl"]
    replaced = runner.invoke(app, [*filled(TRAIN_ONE, paths, tmp_path), "--overwrite"], env=WIDE)
    assert replaced.exit_code == 0, replaced.output
    assert '"mine"' not in (run / "config.json").read_text()


def test_train_of_the_same_config_stopped_before_its_checkpoint_starts_over(
    paths, tmp_path
) -> None:
    args = filled(TRAIN_ONE, paths, tmp_path)
    assert runner.invoke(app, args, env=WIDE).exit_code == 0
    (tmp_path / "run" / "checkpoint.pt").unlink()  # as if killed before its first checkpoint
    again = runner.invoke(app, args, env=WIDE)
    assert again.exit_code == 0, again.output
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["step"] for row in rows] == [1], "each step logged once"
    assert not (tmp_path / "run" / ".textimg.lock").exists()


def test_score_keeps_its_own_results_and_refuses_others(paths, tmp_path) -> None:
    out = tmp_path / "scores"
    args = ["score", str(paths["shards"]), "--no-cache", "-o", str(out)]
    assert runner.invoke(app, args, env=WIDE).exit_code == 0
    again = runner.invoke(app, args, env=WIDE)  # the same run: its own results
    assert again.exit_code == 0, again.output
    before = _contents(out)
    other = ["score", str(paths["data"]), "--no-cache", "-o", str(out)]
    _one_error(runner.invoke(app, other, env=WIDE), "holds the results of another run (images")
    assert _contents(out) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.json").write_text("my notes\n")
    refused = runner.invoke(app, [*args[:-1], str(mine)], env=WIDE)
    _one_error(
        refused, "already holds summary.json, which this run did not write; pass --overwrite"
    )
    assert (mine / "summary.json").read_text() == "my notes\n"
    replaced = runner.invoke(app, [*other, "--overwrite"], env=WIDE)
    assert replaced.exit_code == 0, replaced.output


def test_eval_of_another_checkpoint_with_the_same_name_is_refused(paths, tmp_path) -> None:
    first = make_checkpoint(tmp_path / "A" / "tiny" / "checkpoint.pt", seed=0)
    second = make_checkpoint(tmp_path / "B" / "tiny" / "checkpoint.pt", seed=1)
    out = tmp_path / "E"
    args = ["--prompts", str(paths["one"]), "--samples", "1", "--steps", "1",
            "--device", "cpu", "--no-cache", "-o", str(out)]  # fmt: skip
    assert runner.invoke(app, ["eval", str(first), *args], env=WIDE).exit_code == 0
    record = json.loads((out / "tiny" / ".textimg-run.json").read_text())
    assert record["checkpoint"] == str(first.absolute()) and len(record["sha256_16"]) == 16
    before = _contents(out)
    named = f"holds the results of another run (checkpoints {{'tiny': '{first.absolute()}'}}"
    _one_error(runner.invoke(app, ["eval", str(second), *args], env=WIDE), named)
    assert _contents(out) == before
    both = runner.invoke(app, ["eval", str(first), str(second), *args, "--overwrite"], env=WIDE)
    assert both.exit_code == 0, both.output  # one command, two `tiny`s: two folders
    assert sorted(pd.read_csv(out / "compare.csv")["checkpoint"]) == ["A-tiny", "B-tiny"]
    assert (out / "tiny" / "summary.json").read_bytes() == before["tiny/summary.json"]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(TRAIN_ONE, id="train"),
        pytest.param([*SCORE, "-o", "{tmp}/out"], id="score"),
        pytest.param([*EVAL, "--prompts", "{one}", "-o", "{tmp}/out"], id="eval"),
        pytest.param(["pack", "{images}", "-t", "{empty_table}", "-o", "{tmp}/out"], id="pack"),
        pytest.param(
            ["synth", "--n", "8", "--size", "64", "--no-system-fonts", "--out", "{tmp}/out"],
            id="synth",
        ),  # fmt: skip
    ],
)
def test_a_folder_being_written_refuses_a_second_writer(args, paths, tmp_path) -> None:
    from textimg.files import hold_folder

    folder = tmp_path / ("run" if args is TRAIN_ONE else "out")
    with hold_folder(folder):
        result = runner.invoke(app, filled(args, paths, tmp_path), env=WIDE)
    _one_error(result, f"{folder} is being written by pid {os.getpid()} on ")
    assert not folder.exists(), "nothing written; the holder's lock and the folder it made are gone"
