"""Trainer: exact resume, loss falls when overfitting, NaN stop, schedules, run-dir safety."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from test_reader import make_shards

from textimg.checkpoint import load_checkpoint, read_checkpoint
from textimg.config import (
    DataConfig,
    DiffusionConfig,
    ModelConfig,
    RunConfig,
    RuntimeConfig,
    TrainConfig,
)
from textimg.diffusion import GaussianDiffusion
from textimg.errors import TextimgError
from textimg.model import CharTokenizer, build_model
from textimg.optimizer import learning_rate, parameter_groups
from textimg.train import conditioning_tokens, train

torch.set_num_threads(1)

MICRO_MODEL = ModelConfig(
    image_size=16,
    model_channels=16,
    channel_mult=(1, 2),
    attention_resolutions=(8,),
    text_resolutions=(8,),
    head_channels=16,
    norm_groups=8,
    dropout=0.1,  # dropout too must resume exactly
    text_dim=32,
    text_head_channels=16,
    cross_attention_head_channels=16,
    context_length=16,
)


def micro_config(data: Path, memory_format: str = "auto", **train: object) -> RunConfig:
    """A seconds-long run on the CPU: 16 px, ~0.1M parameters, no sample grids."""
    settings = {"steps": 4, "batch_size": 4, "lr": 2e-3, "warmup_steps": 2, "decay_steps": 50}
    settings |= {"checkpoint_every": 2, "sample_every": 0}
    return RunConfig(
        model=MICRO_MODEL,
        diffusion=DiffusionConfig(prediction="v"),
        train=dataclasses.replace(TrainConfig(), **(settings | train)),
        data=DataConfig(shards=(str(data),), shuffle_buffer=8),
        runtime=RuntimeConfig(device="cpu", memory_format=memory_format),
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("data"), "synth", shards=2, per_shard=12)


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def conv_kernels(model: torch.nn.Module) -> list[torch.Tensor]:
    """Convolution weights whose layout can differ (not 1x1, more than one input channel)."""
    return [p for p in model.parameters() if p.ndim == 4 and min(p.shape[1:]) > 1]


def test_resume_continues_exactly(tmp_path: Path, data: Path) -> None:
    straight = train(micro_config(data, steps=4, grad_accum=2), tmp_path / "straight")
    train(micro_config(data, steps=2, grad_accum=2), tmp_path / "split")
    resumed = train(micro_config(data, steps=4, grad_accum=2), tmp_path / "split", resume=True)
    assert losses(tmp_path / "split") == losses(tmp_path / "straight")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    state = read_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert state["step"] == 4 and state["data_position"]["batches"] == 8
    assert (tmp_path / "split" / "loss.png").stat().st_size > 0


def test_memory_layout_changes_speed_not_training(tmp_path: Path, data: Path) -> None:
    """Channels-last weights (the CPU default) train what the default layout trains, to rounding."""
    last = train(micro_config(data, steps=3, memory_format="channels_last"), tmp_path / "last")
    plain = train(micro_config(data, steps=3, memory_format="contiguous"), tmp_path / "plain")
    for model, contiguous in ((last, False), (plain, True)):
        kernels = conv_kernels(model)
        assert kernels and all(k.is_contiguous() == contiguous for k in kernels)
    assert losses(tmp_path / "last") == pytest.approx(losses(tmp_path / "plain"), rel=1e-3)
    with pytest.raises(TextimgError, match="memory_format must be"):
        train(micro_config(data, memory_format="nhwc"), tmp_path / "bad")


def test_zero_means_off_for_checkpoint_cadence_and_gradient_clipping(
    tmp_path: Path, data: Path
) -> None:
    """`train.checkpoint_every = 0` checkpoints only the last step; `train.grad_clip = 0` clips
    nothing (the same training as an unreachable clip), not every gradient to zero."""
    train(micro_config(data, steps=3, checkpoint_every=0, grad_clip=0.0), tmp_path / "off")
    train(micro_config(data, steps=3, checkpoint_every=3, grad_clip=1e9), tmp_path / "far")
    assert read_checkpoint(tmp_path / "off" / "checkpoint.pt")["step"] == 3
    assert losses(tmp_path / "off") == losses(tmp_path / "far")


def fixed_loss(model: torch.nn.Module, config: RunConfig, images: torch.Tensor) -> float:
    """Loss on fixed timesteps and noise, so before/after compare the model and nothing else."""
    diffusion = GaussianDiffusion.from_config(config.diffusion)
    generator = torch.Generator().manual_seed(0)
    tokens = CharTokenizer(16).encode_batch(["ab"] * len(images)).tokens
    t = torch.linspace(50, 950, len(images)).long()
    noise = torch.randn(images.shape, generator=generator)
    model.eval()
    with torch.no_grad():
        return diffusion.training_losses(model, images, t, tokens, noise)["loss"].mean().item()


@pytest.mark.parametrize("conditioning", ["weave", "glide"])
def test_loss_falls_on_a_tiny_overfit_batch(tmp_path: Path, conditioning: str) -> None:
    data = make_shards(tmp_path / "data", "synth", shards=1, per_shard=4, texts=["ab"])
    config = micro_config(data, steps=40, batch_size=8, decay_steps=40, checkpoint_every=40)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, conditioning=conditioning)
    )
    torch.manual_seed(config.train.seed)
    initial = build_model(config)
    trained = train(config, tmp_path / "run")
    from textimg.data.reader import ShardStream

    images = next(iter(ShardStream(config.data, 16, 1, 8, seed=0)))["image"]
    before, after = fixed_loss(initial, config, images), fixed_loss(trained, config, images)
    assert after < 0.6 * before, (before, after)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(
    tmp_path: Path, data: Path, monkeypatch
) -> None:
    original = GaussianDiffusion.training_losses
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            result["loss"] = result["loss"] * float("nan")
        return result

    monkeypatch.setattr(GaussianDiffusion, "training_losses", poisoned)
    with pytest.raises(TextimgError, match="at step 3.*last good checkpoint"):
        train(micro_config(data, steps=4), tmp_path / "run")
    assert read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2
    model, _, _ = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_run_directory_is_never_overwritten(tmp_path: Path, data: Path) -> None:
    train(micro_config(data, steps=2), tmp_path / "run")
    with pytest.raises(TextimgError, match="--resume"):
        train(micro_config(data, steps=2), tmp_path / "run")
    with pytest.raises(TextimgError, match="already at step 2"):
        train(micro_config(data, steps=2), tmp_path / "run", resume=True)
    other = dataclasses.replace(
        micro_config(data, steps=3), model=dataclasses.replace(MICRO_MODEL, text_dim=64)
    )
    with pytest.raises(TextimgError, match="another model"):
        train(other, tmp_path / "run", resume=True)


def test_learning_rate_warmup_and_decay() -> None:
    config = TrainConfig(lr=1.0, warmup_steps=10, decay_steps=110, min_lr_ratio=0.1)
    assert learning_rate(0, config) == pytest.approx(0.1)
    assert learning_rate(9, config) == pytest.approx(1.0)
    assert learning_rate(60, config) == pytest.approx(0.55)
    assert learning_rate(110, config) == learning_rate(5000, config) == pytest.approx(0.1)


def test_no_weight_decay_on_norms_embeddings_and_gains() -> None:
    model = build_model(RunConfig(model=MICRO_MODEL))
    decayed, plain = parameter_groups(model, 0.1)
    exempt_types = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.Embedding)
    exempt = {id(p) for m in model.modules() if isinstance(m, exempt_types) for p in m.parameters()}
    exempt |= {id(p) for name, p in model.named_parameters() if name.endswith(("gain", "bias"))}
    exempt |= {id(p) for p in model.position_embeddings.parameters()}
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert not exempt & {id(p) for p in decayed["params"]}
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_text_dropout_swaps_in_the_null_transcript() -> None:
    tokenizer = CharTokenizer(16)
    texts = ["abc"] * 1000
    tokens, truncated = conditioning_tokens(texts, tokenizer, 0.1, torch.Generator().manual_seed(0))
    null = tokenizer.null_tokens(1, tokens.shape[1])[0]
    dropped = (tokens == null).all(dim=1)
    assert 0.07 < dropped.float().mean() < 0.13 and truncated == 0
    assert (tokens[~dropped] == tokenizer.encode_batch(["abc"], pad_to=8).tokens[0]).all()


def test_time_budget_stops_with_a_checkpoint_that_resumes(tmp_path: Path, data: Path) -> None:
    run = tmp_path / "run"
    train(micro_config(data, steps=50, max_minutes=1e-9), run)  # spent after the first step
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 1
    assert len(losses(run)) == 1
    train(micro_config(data, steps=3), run, resume=True)
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 3


def test_self_conditioned_run_drafts_on_some_steps_and_resumes_exactly(
    tmp_path: Path, data: Path, monkeypatch
) -> None:
    model = dataclasses.replace(MICRO_MODEL, self_condition=True)
    drafted = []
    original = GaussianDiffusion.training_losses

    def spy(self, *args, **kwargs):
        drafted.append(args[-1])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GaussianDiffusion, "training_losses", spy)
    config = dataclasses.replace(micro_config(data, steps=6), model=model)
    straight = train(config, tmp_path / "straight")
    assert len(drafted) == 6 and 0 < sum(drafted) < 6  # the coin decides per step
    train(dataclasses.replace(config, train=dataclasses.replace(config.train, steps=3)),
          tmp_path / "split")  # fmt: skip
    resumed = train(config, tmp_path / "split", resume=True)
    assert drafted[6:] == drafted[:6]
    assert losses(tmp_path / "split") == losses(tmp_path / "straight")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
