"""The command line as one surface: every choice listed in `--help` from its source, `-o` on
every command with `--out`, one name per meaning (`--samples`, `--ocr-batch`, `--workers 0`),
and one prompt parser behind every `--prompts`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_evaluate import make_checkpoint
from test_reader import make_shards
from typer.main import get_command
from typer.testing import CliRunner

from textimg import sampling
from textimg.choices import ENGINES, PLACEMENTS, SAMPLERS
from textimg.cli import app
from textimg.distributed import DEVICES
from textimg.recipe_files import recipe_names

torch.set_num_threads(1)
runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # one help row per option: no metavar broken across lines

CHOICES = [
    ("train", "--device", DEVICES),
    ("sample", "--device", DEVICES),
    ("sample", "--sampler", SAMPLERS),
    ("eval", "--device", DEVICES),
    ("eval", "--sampler", SAMPLERS),
    ("eval", "--engine", ENGINES),
    ("eval", "--select-engine", ENGINES),
    ("score", "--engine", ENGINES),
    ("transcribe", "--engine", ENGINES),
    ("synth", "--placement", PLACEMENTS),
]


def help_text(command: str) -> str:
    result = runner.invoke(app, [command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("command", "option", "allowed"), CHOICES)
def test_help_lists_each_choice_from_its_source(command: str, option: str, allowed) -> None:
    row = next(line for line in help_text(command).splitlines() if f" {option} " in line)
    assert f"<{'|'.join(allowed)}>" in row, row


def test_sampler_names_match_the_samplers_that_run() -> None:
    assert set(SAMPLERS) == set(sampling.SAMPLE_LOOPS)


def test_train_help_lists_every_recipe() -> None:
    text = re.sub(r"\s+", " ", help_text("train"))
    assert f"A recipe ({', '.join(recipe_names())})" in text


def test_every_out_option_has_the_short_form() -> None:
    commands = get_command(app).commands
    with_out = {
        name: next(p for p in command.params if "--out" in p.opts)
        for name, command in commands.items()
        if any("--out" in p.opts for p in command.params)
    }
    assert {"train", "sample", "export", "score", "transcribe", "eval", "pack", "synth"} <= set(
        with_out
    )
    assert all("-o" in option.opts for option in with_out.values())


@pytest.mark.parametrize(
    ("args", "unknown"),
    [
        (["sample", "ck.pt", "--prompt", "a", "-o", "x.png", "--n", "2"], "--n"),
        (["score", "images", "-o", "out", "--batch-size", "4"], "--batch-size"),
        (["transcribe", "images", "-o", "t.jsonl", "--batch-size", "4"], "--batch-size"),
    ],
)
def test_old_option_names_are_refused_in_one_line(args: list[str], unknown: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and unknown in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("cli") / "checkpoint.pt", seed=0)


def test_sample_reads_text_and_jsonl_prompts_alike(checkpoint: Path, tmp_path: Path) -> None:
    """`--samples` is images per prompt; `--prompts` is one parser for both formats, so a
    test_split.jsonl draws its `text` fields, never its raw JSON lines."""
    (tmp_path / "p.txt").write_text("ab\ntwo\\nlines\n")
    rows = [{"key": "k1", "text": "ab"}, {"key": "k2", "text": "two\nlines"}]
    (tmp_path / "test_split.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["sample", str(checkpoint), "--samples", "2", "--steps", "2", "--device", "cpu"]
    grids = []
    for name, source in (
        ("given.png", ["--prompt", "ab", "--prompt", "two\\nlines"]),
        ("text.png", ["--prompts", str(tmp_path / "p.txt")]),
        ("jsonl.png", ["--prompts", str(tmp_path / "test_split.jsonl")]),
    ):
        result = runner.invoke(app, [*common, *source, "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        grids.append(np.asarray(Image.open(tmp_path / name)))
    assert grids[0].shape == (32, 32)  # 2 prompts x 2 samples of 16 px
    assert all(np.array_equal(grids[0], grid) for grid in grids[1:])


def test_short_out_and_overwrite(checkpoint: Path, tmp_path: Path) -> None:
    """`-o` writes where `--out` would; an existing file is replaced only with --overwrite."""
    args = ["export", str(checkpoint), "-o", str(tmp_path / "export")]
    assert runner.invoke(app, args).exit_code == 0
    assert (tmp_path / "export" / "model.safetensors").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "pass --overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_preview_with_short_out(tmp_path: Path) -> None:
    make_shards(tmp_path / "shards", "s", shards=1, per_shard=4)
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(app, ["preview", str(tmp_path / "shards"), "-o", str(sheet), "--n", "4"])
    assert result.exit_code == 0, result.output
    assert Image.open(sheet).size[0] > 0


def test_pack_workers_zero_means_all_cores(tmp_path: Path) -> None:
    """`--workers 0` is all cores in `pack` as in `synth`, not an error."""
    images = tmp_path / "images"
    images.mkdir()
    for index, text in enumerate(["ab", "cd", "ef"]):
        Image.new("L", (16, 16), 40 * index).save(images / f"{index}.png")
        (images / f"{index}.txt").write_text(text)
    args = ["pack", str(images), "-o", str(tmp_path / "out"), "--workers", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["complete"]


def test_score_reads_with_the_renamed_ocr_batch(tmp_path: Path) -> None:
    """`--ocr-batch` sizes OCR batches (`--batch-size` is a training batch only); the summary
    is plain text, not a Python dict."""
    make_shards(tmp_path / "shards", "s", shards=1, per_shard=2, texts=["ab", "cd"])
    args = ["score", str(tmp_path / "shards"), "-o", str(tmp_path / "out"), "--ocr-batch", "1"]
    result = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "cache")], env=WIDE)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ocr"]["settings"]["batch_size"] == 1
    assert "{'" not in result.output
