"""`textimg train RECIPE --dry-run`: what a run costs, measured on fake tensors, nothing trained."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from textimg.cli import app
from textimg.config import load_recipe
from textimg.errors import TextimgError
from textimg.footprint import Footprint, measure, parse_memory
from textimg.model import build_model

torch.set_num_threads(1)
runner = CliRunner()


def test_dry_run_prints_the_table_and_trains_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", "tiny", "--dry-run", "--gpu-memory", "16GB", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|$", result.output, re.MULTILINE))
    parameters = sum(p.numel() for p in build_model(load_recipe("tiny")).parameters())
    assert rows["parameters"] == f"{parameters / 1e6:.1f} M"
    assert float(rows["forward GFLOP / image"]) > 0
    assert int(rows["largest batch in 16 GB"]) > int(load_recipe("tiny").train.batch_size)
    assert not out.exists()


def test_fake_tensor_counts_match_a_real_forward() -> None:
    """Parameters and FLOPs from fake tensors equal a real model's; the activations saved for
    backward grow with the batch and the image, and shrink with activation checkpointing."""
    config = load_recipe("tiny")
    footprint = measure(config)
    torch.manual_seed(0)
    model = build_model(config)
    m = config.model
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, 1, 32, 32), torch.ones(1), torch.randint(5, 90, (1, m.context_length)))
    assert footprint.parameters == sum(p.numel() for p in model.parameters())
    assert footprint.forward_flops == pytest.approx(counter.get_total_flops(), rel=0.01)
    assert footprint.activation_bytes_per_image > 0 and footprint.fixed_activation_bytes > 0

    doubled = {  # the same network at twice the size: its levels double too
        "image_size": 64,
        "attention_resolutions": tuple(2 * r for r in m.attention_resolutions),
        "text_resolutions": tuple(2 * r for r in m.text_resolutions),
    }
    bigger = dataclasses.replace(config, model=dataclasses.replace(m, **doubled))
    assert measure(bigger).activation_bytes_per_image > 3 * footprint.activation_bytes_per_image
    checkpointed = dataclasses.replace(
        config, model=dataclasses.replace(m, checkpoint_resolutions=(32,))
    )
    assert (
        measure(checkpointed).activation_bytes_per_image
        < 0.8 * footprint.activation_bytes_per_image
    )


def test_largest_batch_is_the_last_that_fits() -> None:
    footprint = Footprint(
        parameters=10**8,
        forward_flops=1e11,
        activation_bytes_per_image=2**28,
        fixed_activation_bytes=2**29,
    )
    memory = parse_memory("80GB")
    batch = footprint.largest_batch(memory)
    assert batch > 0
    assert footprint.step_bytes(batch) <= memory < footprint.step_bytes(batch + 1)
    assert footprint.largest_batch(footprint.state_bytes) == 0


@pytest.mark.parametrize(
    ("text", "expected"), [("80GB", 80e9), ("141 GiB", 141 * 2**30), ("512mb", 512e6)]
)
def test_gpu_memory_sizes(text: str, expected: float) -> None:
    assert parse_memory(text) == expected


def test_a_bad_gpu_memory_is_one_clear_error() -> None:
    with pytest.raises(TextimgError, match="80GB"):
        parse_memory("eighty")
    result = runner.invoke(app, ["train", "tiny", "--dry-run", "--gpu-memory", "80XB"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: ")
