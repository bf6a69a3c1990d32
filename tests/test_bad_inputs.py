"""Every bad input is one `Error:` line and a non-zero exit, checked before any work; a run that
did no useful work never exits 0; a user's file is never replaced without --overwrite; a prompt
that is not text is a row with a status, never scored as something else.

One parametrized row per case, through `CliRunner`, or through a subprocess where the operating
system must refuse the write (a read-only folder, a file-size limit standing in for a full disk).
"""

from __future__ import annotations

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
    assert os.listdir(folder) == [], "nothing written, the holder's lock file removed"
