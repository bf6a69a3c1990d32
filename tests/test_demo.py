"""`textimg demo` at toy size: every stage runs and result.json says what it measured."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from textimg import demo
from textimg.data.shards import iter_samples
from textimg.demo import free_cores, run_demo
from textimg.learning.task import DIGITS


@pytest.mark.parametrize("name", ["letters", "digits"])
def test_demo_runs_the_whole_chain(tmp_path, monkeypatch, name: str) -> None:
    monkeypatch.setenv("TEXTIMG_CACHE_DIR", str(tmp_path / "cache"))
    task = replace(
        demo.TASKS[name], train_images=64, heldout=4, ceiling_renders=1, sample_steps=2, steps=4,
        overrides=("train.warmup_steps=1", "train.checkpoint_every=4", "train.log_every=1"),
    )  # fmt: skip
    out = tmp_path / "demo"
    threads = torch.get_num_threads()
    monkeypatch.setattr(demo, "free_cores", lambda: threads + 1)  # the demo's own setting differs
    result = run_demo(out, seed=1, task=task, log=lambda line: None)
    assert torch.get_num_threads() == threads  # the caller's thread setting is left as it was
    assert json.loads((out / "result.json").read_text()) == json.loads(json.dumps(result))
    for role, path in result["paths"].items():
        assert Path(path).exists(), role
    assert result["steps"] == 4
    # the recipe's network, trained on this run's corpus with the lr decaying within its steps
    config = json.loads((out / "run" / "config.json").read_text())
    assert config["train"]["decay_steps"] == 4
    assert config["data"]["shards"] == [str(out / "corpus")]
    assert config["model"]["image_size"] == 24
    # the prompts were never rendered for training: no corpus image shows one
    prompts = {json.loads(line)["text"] for line in (out / "texts/prompts.jsonl").open()}
    corpus = [
        (members["txt"].decode(), json.loads(members["json"]))
        for _, members in iter_samples([out / "corpus"])
    ]
    drawn = {text for text, _ in corpus}
    assert len(prompts) == 4 and len(drawn) > 4 and not drawn & prompts
    assert set("".join(prompts)) <= set(result["settings"]["alphabet"])
    # every training string is drawn whole: a size too large for the image would cut letters off
    # and the model would learn to write fewer than it is asked for
    trained = set((out / "texts/train.txt").read_text().split())
    assert drawn <= trained and all(meta["dropped"] == 0 for _, meta in corpus)
    if name == "letters":  # words of at least 3 lowercase letters, never digits
        assert result["settings"]["alphabet"] == "abcdefghijklmnopqrstuvwxyz"
        assert all(len(prompt) >= 3 and prompt.isalpha() for prompt in prompts)
        # one monospaced font at one size, 3 letters each: every letter in a fixed place
        assert {(meta["font_file"], meta["font_size"]) for _, meta in corpus} == {
            ("DejaVuSansMono-Bold.ttf", 9)
        }
        assert {len(text) for text in drawn} == {3}
    guidance = {"letters": "3", "digits": "5"}[name]  # what each task samples with
    assert set(result["scores"]) == {
        f"own prompts, guidance {guidance}",
        f"shuffled prompts, guidance {guidance} (chance)",
        "clean renderings (ceiling)",
    }
    for condition, entry in result["scores"].items():
        assert entry["n"] == 4, condition
        for metric in ("trigram", "exact"):
            mean, (low, high) = entry[metric]["mean"], entry[metric]["ci95"]
            assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (mean, low, high))
            assert low <= mean <= high
    assert set(result["seconds"]) == {"synth", "train", "sample and read", "chance and ceiling"}
    # the default reader reads the demo's clean strings: the ceiling the samples are judged against
    assert result["scores"]["clean renderings (ceiling)"]["exact"]["mean"] >= 0.75


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores to leave one free")
def test_free_cores_leaves_out_a_core_another_process_keeps_busy() -> None:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # the spinner is running, not starting
        assert 1 <= free_cores() < (os.cpu_count() or 1)
    finally:
        spinner.kill()
        spinner.wait()


def test_a_stopped_demo_continues_and_a_finished_one_is_kept(tmp_path, monkeypatch) -> None:
    """Run again after Ctrl-C, the demo continues its training from the checkpoint it stopped at
    (steps already trained are not trained again); run again after it finished, it refuses and
    leaves every result as it was."""
    from textimg.errors import TextimgError
    from textimg.learning.chain import render, train_segments
    from textimg.learning.task import write_texts

    monkeypatch.setenv("TEXTIMG_CACHE_DIR", str(tmp_path / "cache"))
    task = replace(
        DIGITS, train_images=64, heldout=4, ceiling_renders=1, sample_steps=2, steps=4, seed=1,
        overrides=("train.warmup_steps=1", "train.checkpoint_every=2", "train.log_every=1"),
    )  # fmt: skip
    out = tmp_path / "demo"
    texts = write_texts(task, out / "texts")  # what the stopped run had done: texts, corpus,
    render(task, texts.train, texts.train_file, texts.fonts_file, 64, 1, out / "corpus")
    train_segments(replace(task, steps=2), out / "corpus", out / "run")  # and 2 of 4 steps
    stopped_at = (out / "run" / "metrics.jsonl").read_text()
    run_demo(out, seed=1, task=task, log=lambda line: None)
    logged = [json.loads(line)["step"] for line in (out / "run/metrics.jsonl").open()]
    assert logged == [1, 2, 3, 4], "steps 1-2 are the stopped run's, 3-4 continue it"
    assert (out / "run/metrics.jsonl").read_text().startswith(stopped_at)
    finished = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(TextimgError, match="holds a finished run"):
        run_demo(out, seed=1, task=task, log=lambda line: None)
    assert finished == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_demo_writes_letters_unless_told_digits(tmp_path, monkeypatch) -> None:
    """`textimg demo` alone runs the letters task; `--task digits` the digit strings."""
    from typer.testing import CliRunner

    from textimg.cli import app
    from textimg.learning.task import LETTERS

    asked = []

    def fake_run_demo(out, seed, task, log, report):  # the chain itself is tested above
        asked.append(task)
        return {"total_seconds": 0.0, "paths": {}}

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    runner = CliRunner()
    for args in ([], ["--task", "digits"]):
        result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), *args])
        assert result.exit_code == 0, result.output
    assert asked == [LETTERS, DIGITS]
