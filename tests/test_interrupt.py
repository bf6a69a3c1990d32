"""Ctrl-C and SIGTERM stop `pack`, `train` and `eval` within seconds, keep what finished, and the
same command resumes: each command runs as a real process that gets the signal mid-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from test_evaluate import make_checkpoint
from test_reader import make_shards

from textimg.checkpoint import read_checkpoint
from textimg.data.pack import PackOptions, pack
from textimg.data.shards import read_manifest
from textimg.interrupt import Interrupted, deferred, exit_status, signals_interrupt

torch.set_num_threads(1)

STOP_WITHIN_S = 5.0
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400"}

# `textimg` with each shard write slowed by 0.2 s, so a 60-shard pack is still writing when the
# signal comes however fast the machine; the shards themselves are written as always.
PACED_PACK = (
    "import sys, time\n"
    "import textimg.data.pack as packing\n"
    "write = packing._write_job\n"
    "packing._write_job = lambda job: (time.sleep(0.2), write(job))[1]\n"
    "from textimg.cli import main\n"
    "main()\n"
)


def run(arguments: list[str], code: str = "from textimg.cli import main; main()") -> str:
    """Run `textimg ARGUMENTS` to completion; its stderr and stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code, *arguments], capture_output=True, text=True, env=ENVIRONMENT
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stderr + done.stdout


def stop_when(
    arguments: list[str],
    started: Callable[[], bool],
    number: int = signal.SIGINT,
    code: str = "from textimg.cli import main; main()",
) -> tuple[int, str]:
    """Start `textimg ARGUMENTS`, send signal `number` once `started()` holds, and return its exit
    status and last stderr line after checking that it exited within `STOP_WITHIN_S`."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENVIRONMENT,
    )
    deadline = time.monotonic() + 300
    while not started():
        if process.poll() is not None:
            pytest.fail(f"finished before it was stopped: {process.communicate()}")
        assert time.monotonic() < deadline, "never started working"
        time.sleep(0.02)
    process.send_signal(number)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    took = time.monotonic() - sent
    assert took < STOP_WITHIN_S, f"took {took:.1f} s to stop: {stderr}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    return process.returncode, lines[-1] if lines else ""


def test_pack_stops_with_finished_shards_recorded_and_resumes(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for index in range(60):
        Image.new("L", (12, 8), index * 4).save(images / f"{index:02d}.png")
        (images / f"{index:02d}.txt").write_text(f"text {index}")
    out = tmp_path / "out"
    arguments = ["pack", str(images), "--out", str(out), "--shard-size", "1", "--workers", "2"]

    def a_shard_is_recorded() -> bool:
        try:
            return bool((read_manifest(out) or {}).get("shards"))
        except (OSError, ValueError):
            return False

    status, line = stop_when(arguments, a_shard_is_recorded, code=PACED_PACK)
    assert status == 130
    assert line.startswith("Stopped by Ctrl-C: ") and "the same command resumes" in line
    recorded = read_manifest(out)
    assert not recorded["complete"] and 0 < len(recorded["shards"]) < 60
    assert f"{len(recorded['shards'])} of 60 shards" in line

    summary = run(arguments)
    assert "shards written / already done" in summary
    finished = read_manifest(out)
    assert finished["complete"] and len(finished["shards"]) == 60
    assert finished["shards"].items() >= recorded["shards"].items()  # kept, not rewritten
    straight = pack(images, tmp_path / "straight", options=PackOptions(shard_size=1), workers=1)
    assert straight.packed == 60
    for name in finished["planned_shards"]:
        assert (out / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_train_checkpoints_the_last_step_and_the_same_command_resumes(
    tmp_path: Path, number: int
) -> None:
    data = make_shards(tmp_path / "data", "synth", shards=1, per_shard=8)
    run_dir = tmp_path / "run"
    arguments = ["train", "tiny", "--data", str(data), "--out", str(run_dir), "--steps", "40"]
    arguments += [
        "--set", "model.image_size=8", "--set", "model.model_channels=8",
        "--set", "model.channel_mult=[1]", "--set", "model.attention_resolutions=[]",
        "--set", "model.text_resolutions=[8]", "--set", "model.text_dim=16",
        "--set", "model.head_channels=8", "--set", "model.text_head_channels=8",
        "--set", "model.cross_attention_head_channels=8", "--set", "model.context_length=8",
        "--set", "train.sample_every=0", "--set", "train.checkpoint_every=1000",
        "--batch-size", "2", "--device", "cpu",
    ]  # fmt: skip
    metrics = run_dir / "metrics.jsonl"

    def two_steps_logged() -> bool:
        return metrics.exists() and metrics.read_text().count("\n") >= 2

    status, line = stop_when(arguments, two_steps_logged, number)
    assert status == 128 + number
    name = "Ctrl-C" if number == signal.SIGINT else "SIGTERM"
    assert line.startswith(f"Stopped by {name}: ") and "the same command resumes" in line
    step = read_checkpoint(run_dir / "checkpoint.pt")["step"]
    assert 2 <= step < 40 and f"holds step {step} of 40" in line
    assert len(metrics.read_text().splitlines()) == step
    if number == signal.SIGTERM:
        return  # the same path as Ctrl-C from here on

    output = run(arguments)
    assert f"resumed at step {step}" in output
    assert len(output.splitlines()) < 15 and '"model"' not in output  # a summary, not the JSON
    assert read_checkpoint(run_dir / "checkpoint.pt")["step"] == 40
    logged = [json.loads(row) for row in metrics.read_text().splitlines()]
    assert [row["step"] for row in logged] == list(range(1, 41))
    # The checkpoint holds whole steps: resuming it trains exactly what one run trains (the same
    # command in a process of its own, so torch has the same threads as the interrupted one).
    run([str(tmp_path / "straight") if a == str(run_dir) else a for a in arguments])
    straight = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["loss"] for row in straight] == [row["loss"] for row in logged]


def test_eval_keeps_finished_samples_and_rows_and_the_same_command_reuses_them(
    tmp_path: Path,
) -> None:
    checkpoint = make_checkpoint(tmp_path / "micro" / "checkpoint.pt", seed=0)
    prompts = tmp_path / "prompts.jsonl"
    words = ["ab", "cd", "Hi", "xyz", "ok", "cat", "42", "no", "up", "go", "it", "me"]
    prompts.write_text("".join(json.dumps({"key": f"p{i}", "text": w}) + "\n"
                               for i, w in enumerate(words)))  # fmt: skip
    out = tmp_path / "eval"
    arguments = ["eval", str(checkpoint), "--prompts", str(prompts), "--out", str(out)]
    arguments += ["--samples", "2", "--steps", "20", "--sample-batch", "2", "--device", "cpu"]
    arguments += ["--cache-dir", str(tmp_path / "cache")]
    folder = out / "micro"

    def rows_scored() -> bool:
        """Two batches read: the OCR cache (committed per batch) holds four transcripts, and
        the first batch's rows are scored."""
        path = tmp_path / "cache" / "ocr.sqlite"
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as cache:
                return cache.execute("SELECT COUNT(*) FROM readings").fetchone()[0] >= 4
        except sqlite3.Error:  # not created yet
            return False

    status, line = stop_when(arguments, rows_scored)
    assert status == 130 and line.startswith("Stopped by Ctrl-C: ")
    assert "the same command reuses them" in line
    saved = len(list(folder.glob("*.png")))
    partial = pd.read_csv(folder / "results.partial.csv")
    assert 2 <= len(partial) <= saved < 24 and not (folder / "results.csv").exists()
    assert f"{saved} samples of micro" in line and f"{len(partial)} of 24 rows scored" in line

    run(arguments)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["counts"]["rows"] == 24 and summary["counts"]["reused_samples"] >= saved
    assert not list(folder.glob("results.partial*"))


def test_a_signal_inside_deferred_waits_for_the_block_to_end() -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt), signals_interrupt():
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            finished.append("update")
        finished.append("after")
    assert finished == ["update"] and exit_status() == 143


def test_interrupted_is_a_keyboard_interrupt() -> None:
    """Code that stops on Ctrl-C (a notebook, a caller's own handler) stops on it too."""
    assert issubclass(Interrupted, KeyboardInterrupt)
