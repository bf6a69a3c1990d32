"""Warm start (the post's sandwich): exactly the middle is copied, mismatches are refused clearly,
and the trainer does it on `--init-from`, printing its counts."""

import dataclasses
from pathlib import Path

import pytest
import torch
from test_reader import make_shards
from test_train import MICRO_MODEL

from textimg.checkpoint import read_checkpoint
from textimg.config import (
    DataConfig,
    DiffusionConfig,
    RunConfig,
    RuntimeConfig,
    SuperResConfig,
    TrainConfig,
    apply_overrides,
)
from textimg.errors import TextimgError
from textimg.model import build_model
from textimg.train import TrainReport, train
from textimg.warm_start import inner_config, outer_parameter_names, warm_start

torch.set_num_threads(1)

BASE = RunConfig(model=dataclasses.replace(MICRO_MODEL, dropout=0.0))
# The base's (1, 2) levels under one new 32 px level of width 1 x model_channels.
SUPER = dataclasses.replace(
    BASE,
    model=dataclasses.replace(BASE.model, image_size=32, channel_mult=(1, 1, 2)),
    super_resolution=SuperResConfig(low_res_size=16, outer_lr_scale=3.0),
)


def built(config: RunConfig, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(config)


def test_copies_the_middle_and_leaves_the_bread_fresh() -> None:
    base, model = built(BASE, 1), built(SUPER, 2)
    fresh_before = {k: v.clone() for k, v in model.state_dict().items()}
    report = warm_start(model, SUPER, base.state_dict(), BASE.model)
    state, base_state = model.state_dict(), base.state_dict()
    shift = 2  # one new level of num_res_blocks=1 ResBlock + 1 downsampling block
    for name, tensor in base_state.items():
        if name.startswith(("out.", "input_blocks.0.")):
            continue
        if name.startswith("input_blocks."):
            _, index, rest = name.split(".", 2)
            name = f"input_blocks.{int(index) + shift}.{rest}"
        assert torch.equal(state[name], tensor), name
        assert name in report.copied
    assert len(report.copied) == len(base_state) - sum(
        n.startswith(("out.", "input_blocks.0.")) for n in base_state
    )
    for prefix in ("text_encoder.", "middle_block.", "position_embeddings.", "time_embedding."):
        assert any(name.startswith(prefix) for name in report.copied), prefix
    # The bread: input conv, the new 32 px level on both sides, the head; all still at init.
    expected_fresh = ("input_blocks.0.", "input_blocks.1.", "input_blocks.2.", "out.")
    assert all(name.startswith(expected_fresh) for name in report.fresh[:4])
    for name in report.fresh:
        assert torch.equal(state[name], fresh_before[name]), name
    assert {n for n in report.fresh if n.startswith("output_blocks.")} >= {
        n for n in state if n.startswith(("output_blocks.4.", "output_blocks.5."))
    }
    assert len(report.copied) + len(report.fresh) == len(state)
    assert outer_parameter_names(SUPER, model) == {
        name for name, _ in model.named_parameters() if name in report.fresh
    }
    assert "tensors copied from the base" in report.summary()


@pytest.mark.parametrize(
    ("base_overrides", "super_overrides", "message"),
    [
        (["model.channel_mult=[1, 2, 2]"], [], r"set model.channel_mult=\[1, 1, 2, 2\]"),
        (["model.text_dim=64"], [], "model.text_dim: the base has 64, this model 32"),
        (["model.conditioning=glide"], [], 'set model.conditioning="glide"'),
        (
            [
                "model.image_size=32",
                "model.attention_resolutions=[16]",
                "model.text_resolutions=[16]",
            ],
            [],
            "set super_resolution.low_res_size=32",
        ),
        ([], ["model.channel_mult=[2, 1, 2]"], r"channel_mult\[0\] is 2, must be 1"),
        ([], ["super_resolution.low_res_size=12"], "halved 1 to 2 times"),
    ],
)
def test_refuses_a_base_that_cannot_line_up(
    base_overrides: list[str], super_overrides: list[str], message: str
) -> None:
    base_config = apply_overrides(BASE, base_overrides)
    super_config = apply_overrides(SUPER, super_overrides)
    model = built(dataclasses.replace(super_config, super_resolution=SUPER.super_resolution), 0)
    with pytest.raises(TextimgError, match=message):
        warm_start(model, super_config, built(base_config, 0).state_dict(), base_config.model)


def test_the_outer_levels_attention_is_not_asked_of_the_base() -> None:
    config = apply_overrides(SUPER, ["model.text_resolutions=[32, 8]"])
    assert inner_config(config).text_resolutions == (8,)


def test_trainer_warm_starts_on_init_from(tmp_path: Path) -> None:
    data = make_shards(tmp_path / "data", "synth", shards=1, per_shard=4)
    settings = TrainConfig(steps=1, batch_size=2, lr=0.0, warmup_steps=1, sample_every=1,
                           sample_steps=2, checkpoint_every=1)  # fmt: skip
    data_config = DataConfig(shards=(str(data),), shuffle_buffer=4)
    on_cpu = RuntimeConfig(device="cpu")
    base_config = dataclasses.replace(BASE, train=settings, data=data_config, runtime=on_cpu)
    train(base_config, tmp_path / "base")
    base = read_checkpoint(tmp_path / "base" / "checkpoint.pt")["ema"]
    super_config = dataclasses.replace(
        SUPER,
        train=settings,
        data=data_config,
        diffusion=DiffusionConfig(prediction="v"),
        runtime=on_cpu,
    )
    notes: list[str] = []
    model = train(
        super_config,
        tmp_path / "sr",
        init_from=tmp_path / "base" / "checkpoint.pt",
        report=TrainReport(note=notes.append),
    )
    assert any("tensors copied from the base" in line for line in notes)
    # lr 0: after one step every copied tensor still equals the base's.
    state = model.state_dict()
    assert torch.equal(
        state["middle_block.0.in_conv.weight"], base["middle_block.0.in_conv.weight"]
    )
    assert torch.equal(
        state["input_blocks.3.0.in_conv.weight"], base["input_blocks.1.0.in_conv.weight"]
    )
    saved = read_checkpoint(tmp_path / "sr" / "checkpoint.pt")
    scales = sorted({group["lr_scale"] for group in saved["optimizer"]["param_groups"]})
    assert scales == [1.0, 3.0]
    assert (tmp_path / "sr" / "samples" / "step-000001.png").exists()
