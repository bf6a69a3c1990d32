"""Super-resolution: training pairs, twice-the-size outputs, and the cascade end to end
(`textimg sample --sr`, `textimg eval --rerank --sr`) on tiny untrained checkpoints."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_evaluate import MICRO, StubEngine
from typer.testing import CliRunner

from textimg.checkpoint import save_checkpoint
from textimg.cli import app
from textimg.config import DiffusionConfig, RunConfig, SuperResConfig, to_dict
from textimg.diffusion import GaussianDiffusion
from textimg.eval import evaluate as ev
from textimg.model import build_model
from textimg.sampling import sample
from textimg.super_resolution import downsample, gaussian_blur, training_inputs

torch.set_num_threads(1)
runner = CliRunner()

BASE = RunConfig(model=MICRO, diffusion=DiffusionConfig(prediction="v"))
SUPER = dataclasses.replace(
    BASE,
    model=dataclasses.replace(MICRO, image_size=32, channel_mult=(1, 1, 2)),
    super_resolution=SuperResConfig(low_res_size=16),
)
DIFFUSION = GaussianDiffusion.from_config(BASE.diffusion)


def built(config: RunConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(config)
    torch.nn.init.normal_(model.out[-1].weight, std=0.1)  # so outputs depend on the inputs
    return model.eval()


def save(config: RunConfig, path: Path) -> Path:
    weights = built(config).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"config": to_dict(config), "step": 0, "model": weights, "ema": weights}
    save_checkpoint(path, state | {"optimizer": {}, "data_position": {}})
    return path


@pytest.mark.parametrize(
    "settings",
    [
        SuperResConfig(low_res_size=16),
        SuperResConfig(low_res_size=16, upsample="bicubic", noise_conditioning=True),
    ],
)
def test_output_is_twice_the_low_res_input(settings: SuperResConfig) -> None:
    model = built(dataclasses.replace(SUPER, super_resolution=settings))
    low_res = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 1), dtype=np.uint8)
    images = sample(model, DIFFUSION, ["ab", "cd"], steps=2, guidance=2.0, low_res=low_res)
    assert images.shape == (2, 32, 32, 1) and images.dtype == np.uint8
    again = sample(model, DIFFUSION, ["ab", "cd"], steps=2, guidance=2.0, low_res=low_res)
    assert np.array_equal(images, again)
    other = sample(model, DIFFUSION, ["ab", "cd"], steps=2, guidance=2.0, low_res=255 - low_res)
    assert not np.array_equal(images, other)  # the low-res image reaches the output


def test_base_and_super_resolution_models_refuse_the_wrong_inputs() -> None:
    from textimg.errors import TextimgError

    with pytest.raises(TextimgError, match="needs low-res images"):
        sample(built(SUPER), DIFFUSION, ["ab"], steps=1)
    with pytest.raises(TextimgError, match="reads 16 px images"):
        sample(built(SUPER), DIFFUSION, ["ab"], steps=1, low_res=np.zeros((1, 8, 8, 1), np.uint8))


def test_training_pairs_are_downsampled_blurred_and_noised_from_the_generator() -> None:
    images = torch.rand(4, 1, 32, 32) * 2 - 1
    plain = training_inputs(SUPER.super_resolution, images, DIFFUSION, torch.Generator())
    assert torch.allclose(plain["low_res"], torch.nn.functional.avg_pool2d(images, 2))
    assert torch.equal(
        downsample(torch.ones(1, 1, 32, 32), 16, "bicubic"), torch.ones(1, 1, 16, 16)
    )
    sharp = torch.zeros(1, 1, 9, 9)
    sharp[..., 4, 4] = 1
    blurred = gaussian_blur(sharp, torch.tensor([0.5]))
    assert blurred.sum().item() == pytest.approx(1.0) and 0.3 < blurred[..., 4, 4].item() < 0.7
    settings = SuperResConfig(low_res_size=16, blur_prob=1.0, noise_conditioning=True,
                              noise_max_step=10)  # fmt: skip
    first = training_inputs(settings, images, DIFFUSION, torch.Generator().manual_seed(1))
    second = training_inputs(settings, images, DIFFUSION, torch.Generator().manual_seed(1))
    assert torch.equal(first["low_res"], second["low_res"])
    assert first["low_res_t"].shape == (4,) and first["low_res_t"].max() < 10
    assert training_inputs(BASE.super_resolution, images, DIFFUSION, torch.Generator()) == {}


@pytest.fixture(scope="module")
def cascade(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("cascade")
    return (
        save(BASE, root / "base" / "checkpoint.pt"),
        save(SUPER, root / "sr" / "checkpoint.pt"),
        root,
    )


def test_sample_cli_writes_both_sizes(cascade, tmp_path: Path) -> None:
    base, upsampler, _ = cascade
    args = ["sample", str(base), "--sr", str(upsampler), "--prompt", "ab", "--prompt", "cd"]
    result = runner.invoke(
        app, [*args, "--samples", "2", "--steps", "2", "--out", str(tmp_path / "g.png")]
    )
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "g.png").size == (32, 32)  # 2 x 2 grid of 16 px
    assert Image.open(tmp_path / "g-sr.png").size == (64, 64)  # 2 x 2 grid of 32 px
    result = runner.invoke(app, [*args, "--steps", "2", "--out", str(tmp_path / "each")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "each" / "001-00-sr.png").size == (32, 32)
    swapped = runner.invoke(app, ["sample", str(upsampler), "--sr", str(base), "--prompt", "a",
                                  "--out", str(tmp_path / "x.png")])  # fmt: skip
    assert swapped.exit_code == 1 and "not a super-resolution model" in swapped.output


def test_eval_reranks_through_the_super_resolution_model(cascade, tmp_path: Path) -> None:
    base, upsampler, root = cascade
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"key": k, "text": "abcd"}) + "\n" for k in "xy"))
    settings = ev.EvalSettings(
        sampling=ev.SamplingSettings(samples=2, steps=2), rerank=True,
        super_resolution=upsampler, sr_count=3, sr_steps=2,
    )  # fmt: skip
    table = ev.evaluate([base], prompts, tmp_path, StubEngine(), settings)
    summary = json.loads((tmp_path / "base" / "summary.json").read_text())
    assert summary["rerank"]["counts"]["rows"] == 2  # one upsampled pick per prompt
    assert summary["super_resolution"]["count"] == 3
    for key in "xy":
        assert Image.open(tmp_path / "base" / f"{key}_sr.png").size == (32, 32)
        assert Image.open(tmp_path / "base" / f"{key}_0.png").size == (16, 16)
    assert table[0]["rerank_trigram"] is not None


def one_line(output: str) -> str:
    """Rich wraps error lines at the terminal width; rejoin them."""
    return " ".join(output.split())


def test_eval_sr_scores_every_upsampled_sample_and_needs_a_matching_base(
    cascade, tmp_path: Path
) -> None:
    base, upsampler, root = cascade
    prompts = root / "one.jsonl"
    prompts.write_text(json.dumps({"key": "x", "text": "ab"}) + "\n")
    settings = ev.EvalSettings(sampling=ev.SamplingSettings(samples=2, steps=2),
                               super_resolution=upsampler, sr_steps=2)  # fmt: skip
    ev.evaluate([base], prompts, tmp_path / "plain", StubEngine(), settings)
    summary = json.loads((tmp_path / "plain" / "base" / "summary.json").read_text())
    assert summary["super_resolution"]["applied_to"] == "every sample"
    assert summary["counts"]["scored"] == 2
    assert Image.open(tmp_path / "plain" / "base" / "x_1.png").size == (32, 32)
    args = ["eval", str(base), "--prompts", str(prompts), "--out", str(tmp_path), "--sr"]
    result = runner.invoke(app, [*args, str(base), "--rerank"])
    assert result.exit_code == 1 and "not a super-resolution model" in one_line(result.output)
