"""`textimg train`, `sample` and `export` through the Typer app, as a user runs them."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_reader import make_shards
from typer.testing import CliRunner

from textimg.checkpoint import read_checkpoint_config
from textimg.cli import app
from textimg.config import load_recipe
from textimg.errors import TextimgError
from textimg.recipe_files import recipe_names

torch.set_num_threads(1)
runner = CliRunner()

# tiny, shrunk to seconds: the command line is the one users type, plus --set overrides.
SMALL = [
    "--set", "model.image_size=16", "--set", "model.model_channels=16",
    "--set", "model.channel_mult=[1, 2]", "--set", "model.text_resolutions=[8]",
    "--set", "train.sample_every=2", "--set", "train.sample_steps=2",
    "--set", "train.checkpoint_every=2", "--batch-size", "4", "--device", "cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    make_shards(root / "data", "synth", shards=1, per_shard=8)
    out = root / "run"
    args = ["train", "tiny", "--data", str(root / "data"), "--out", str(out), "--steps", "2"]
    result = runner.invoke(app, args + SMALL)
    assert result.exit_code == 0, result.output
    resumed = runner.invoke(app, args[:-1] + ["3", "--resume"] + SMALL)
    assert resumed.exit_code == 0, resumed.output
    return out


def test_train_writes_the_run(run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert {"loss", "lr", "grad_norm", "images_per_s"} <= set(rows[0])
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["image_size"] == 16 and config["train"]["steps"] == 3
    assert (run / "samples" / "step-000002.png").exists() and (run / "loss.png").exists()


def test_sample_grid_and_folder_are_deterministic(run: Path, tmp_path: Path) -> None:
    checkpoint = str(run / "checkpoint.pt")
    common = ["--prompt", "ab", "--prompt", "two\\nlines", "--samples", "2", "--steps", "3"]
    for name in ("a.png", "b.png"):
        result = runner.invoke(app, ["sample", checkpoint, "--out", str(tmp_path / name), *common])
        assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(tmp_path / "a.png"))
    assert grid.shape == (32, 32)  # 2 prompts x 2 images of 16 px, grayscale
    assert np.array_equal(grid, np.asarray(Image.open(tmp_path / "b.png")))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hi\nthere\n")
    args = ["sample", checkpoint, "--prompts", str(prompts), "--out", str(tmp_path / "dir")]
    result = runner.invoke(app, [*args, "--sampler", "ancestral", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["000-00.png", "001-00.png"]


def test_export_writes_safetensors_and_config(run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(run / "checkpoint.pt"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    raw = (tmp_path / "model.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    ema = torch.load(run / "checkpoint.pt", weights_only=True)["ema"]
    name = "text_encoder.token_embedding.weight"
    start, end = header[name]["data_offsets"]
    stored = np.frombuffer(raw[8 + size + start : 8 + size + end], dtype=np.float32)
    assert np.array_equal(stored.reshape(header[name]["shape"]), ema[name].numpy())
    assert set(header) - {"__metadata__"} == set(ema)
    assert json.loads((tmp_path / "config.json").read_text())["model"]["image_size"] == 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "nope"], "unknown recipe 'nope'"),
        (["train", "tiny", "--set", "train.lr=fast"], "train.lr must be a number"),
        (["train", "tiny", "--set", "train.speed=1"], "unknown setting train.speed"),
        (["train", "tiny", "--data", "a=0.3", "--data", "b"], "weight to every --data"),
        (["train", "tiny", "--data", "/nonexistent/dir"], "no shards found"),
        (["sample", "missing.pt", "--prompt", "x", "--out", "x.png"], "no checkpoint at"),
        (["sample", "missing.pt", "--out", "x.png"], "at least one --prompt"),
        (["train", "tiny", "--resume"], "no checkpoint at"),
    ],
)
def test_bad_input_is_one_error_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path / "o")] if args[0] == "train" else args
    )
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_every_recipe_loads_and_finetune_extends_base() -> None:
    assert set(recipe_names()) >= {"tiny", "base64", "base", "finetune"}
    base, finetune = load_recipe("base"), load_recipe("finetune")
    assert finetune.model == base.model and base.model.image_channels == 3
    assert finetune.data.weights == (0.3, 0.7) and finetune.train.lr < base.train.lr
    with pytest.raises(TextimgError, match="does not exist"):
        load_recipe("missing.toml")


def test_export_loads_with_the_safetensors_library(run: Path, tmp_path: Path) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    runner.invoke(app, ["export", str(run / "checkpoint.pt"), "--out", str(tmp_path)])
    loaded = safetensors_torch.load_file(tmp_path / "model.safetensors")
    ema = torch.load(run / "checkpoint.pt", weights_only=True)["ema"]
    assert loaded.keys() == ema.keys()
    assert all(torch.equal(loaded[name], ema[name]) for name in ema)


def test_resume_keeps_the_settings_the_run_was_started_with(tmp_path: Path) -> None:
    """`--resume` without the launch's --set options continues the same model and lr horizon
    (the recipe says 32 px and decay over 3,000 steps); options given on resume still apply."""
    make_shards(tmp_path / "data", "synth", shards=1, per_shard=8)
    out = str(tmp_path / "run")
    start = ["train", "tiny", "--data", str(tmp_path / "data"), "--out", out, "--steps", "2"]
    result = runner.invoke(app, [*start, *SMALL, "--set", "train.decay_steps=7"])
    assert result.exit_code == 0, result.output
    resumed = ["train", "tiny", "--out", out, "--resume", "--steps", "3"]
    result = runner.invoke(app, [*resumed, "--set", "train.log_every=3"])
    assert result.exit_code == 0, result.output
    saved = read_checkpoint_config(tmp_path / "run" / "checkpoint.pt")
    assert saved.model.image_size == 16 and saved.train.batch_size == 4
    assert saved.train.decay_steps == 7 and saved.train.steps == 3
    assert saved.train.log_every == 3
