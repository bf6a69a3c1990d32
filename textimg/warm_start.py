"""The post's warm start: a super-resolution model whose whole middle is the trained base model.

"At initialization, my 256 super-res model would just be my 128 model sandwiched inside two extra
parts, with random weights for the 'bread' only." As `state_dict_sandwich` in the author's
improved-diffusion (`train_util.py`, nostalgebraist.md section 1.5): the base's `input_blocks.N`
become `input_blocks.N+shift`, where shift counts the blocks of the new outer levels; the input
convolution and the output head are dropped (their channel counts differ); everything else keeps
its name: the middle block, the output blocks (ordered lowest resolution first, so they line up),
the text encoder, the timestep embedding the copied ResBlocks were trained with, and the axial
position embeddings of the shared resolutions.

The bread is a pure function of the super-resolution config (the levels above `low_res_size`),
so the trainer can give it its own learning rate on resume too, without the base checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import torch
from torch import nn

from textimg.config import ModelConfig, RunConfig
from textimg.errors import TextimgError

# Settings that change no weight shape of the inner part: they may differ between base and SR.
FREE_SETTINGS = ("image_channels", "dropout")


def outer_levels(config: RunConfig) -> int:
    """How many resolution levels the super-resolution model has above its low-res size."""
    model, low = config.model, config.super_resolution.low_res_size
    levels, size = 0, model.image_size
    while size > low and size % 2 == 0:
        size, levels = size // 2, levels + 1
    if not low or size != low or levels >= len(model.channel_mult):
        raise TextimgError(
            f"super_resolution.low_res_size {low} must be model.image_size {model.image_size} "
            f"halved 1 to {len(model.channel_mult) - 1} times for a warm start"
        )
    return levels


def inner_config(config: RunConfig) -> ModelConfig:
    """The base model that fits inside this super-resolution model, level for level."""
    levels = outer_levels(config)
    mult = config.model.channel_mult
    if mult[levels - 1] != 1:
        # The base's first ResBlock reads `model_channels` features from its input convolution;
        # in the sandwich it reads the last outer level, which must therefore be as wide.
        raise TextimgError(
            f"model.channel_mult[{levels - 1}] is {mult[levels - 1]}, must be 1 so the base's "
            "first level reads as many channels as it did from its own input convolution"
        )
    low, model = config.super_resolution.low_res_size, config.model
    return dataclasses.replace(
        model,
        image_size=low,
        channel_mult=mult[levels:],
        # the outer levels' attention is the super-resolution model's own, not the base's
        attention_resolutions=tuple(side for side in model.attention_resolutions if side <= low),
        text_resolutions=tuple(side for side in model.text_resolutions if side <= low),
    )


def check_base(base: ModelConfig, config: RunConfig) -> None:
    """Refuse a base whose weights cannot line up, naming each setting to change."""
    needed = inner_config(config)
    problems = []
    for field in dataclasses.fields(ModelConfig):
        name = field.name
        have, want = getattr(base, name), getattr(needed, name)
        if name in FREE_SETTINGS or have == want:
            continue
        if name == "image_size":
            problems.append(
                f"super_resolution.low_res_size is {want} but the base makes {have} px images: "
                f"set super_resolution.low_res_size={have} (and model.image_size to a multiple)"
            )
        elif name == "channel_mult":
            outer = list(config.model.channel_mult[: outer_levels(config)])
            problems.append(
                f"model.channel_mult: the inner levels are {list(want)}, the base has "
                f"{list(have)}: set model.channel_mult={outer + list(have)}"
            )
        else:
            problems.append(
                f"model.{name}: the base has {_literal(have)}, this model {_literal(want)}: "
                f"set model.{name}={_literal(have)}"
            )
    if problems:
        raise TextimgError(
            "the base checkpoint cannot be warm-started into this super-resolution model:\n  "
            + "\n  ".join(problems)
        )


def _literal(value: object) -> str:
    """A setting as `--set` takes it (JSON scalars and lists are TOML literals too)."""
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def base_name_in_sandwich(name: str, shift: int) -> str | None:
    """Where a base tensor goes in the super-resolution model; None for the dropped ones."""
    if name.startswith(("out.", "input_blocks.0.")):
        return None
    if name.startswith("input_blocks."):
        _, index, rest = name.split(".", 2)
        return f"input_blocks.{int(index) + shift}.{rest}"
    return name


def sandwich_names(config: RunConfig) -> dict[str, str]:
    """base tensor name -> super-resolution tensor name, from the configs alone (meta device)."""
    from textimg.model.unet import UNet

    shift = outer_levels(config) * (config.model.num_res_blocks + 1)
    with torch.device("meta"):
        base = UNet(inner_config(config), out_channels=config.model.image_channels)
    names = (base_name_in_sandwich(name, shift) for name in base.state_dict())
    return {
        name: target
        for name, target in zip(base.state_dict(), names, strict=True)
        if target is not None
    }


def outer_parameter_names(config: RunConfig, model: nn.Module) -> set[str]:
    """The bread: parameters of `model` that a warm start leaves at their fresh initialisation."""
    copied = set(sandwich_names(config).values())
    return {name for name, _ in model.named_parameters() if name not in copied}


@dataclass(frozen=True)
class WarmStart:
    """What a warm start did: the tensors copied from the base and those left fresh."""

    copied: list[str]
    fresh: list[str]

    def summary(self) -> str:
        """One line for the console: counts, and the fresh tensors grouped by top module."""
        groups: dict[str, int] = {}
        for name in self.fresh:
            parts = name.split(".")
            key = ".".join(parts[:2]) if parts[0].endswith("blocks") else parts[0]
            groups[key] = groups.get(key, 0) + 1
        fresh = ", ".join(f"{key} ({count})" for key, count in groups.items())
        return (
            f"warm start: {len(self.copied)} tensors copied from the base, "
            f"{len(self.fresh)} new: {fresh}"
        )


def warm_start(
    model: nn.Module, config: RunConfig, base_state: dict[str, torch.Tensor], base: ModelConfig
) -> WarmStart:
    """Copy the base's weights into the super-resolution `model` in place; see the module doc."""
    check_base(base, config)
    mapping = sandwich_names(config)
    state = model.state_dict()
    missing = sorted(set(mapping) - set(base_state))
    wrong = [
        f"{name} {tuple(base_state[name].shape)} -> {target} {tuple(state[target].shape)}"
        for name, target in mapping.items()
        if name in base_state and base_state[name].shape != state[target].shape
    ]
    if missing or wrong:  # the configs agreed, so this is a checkpoint from another code version
        raise TextimgError(
            "the base checkpoint's weights do not match its config: "
            + "; ".join((missing + wrong)[:5])
        )
    for name, target in mapping.items():
        state[target] = base_state[name]
    model.load_state_dict(state)
    copied = set(mapping.values())
    return WarmStart(copied=sorted(copied), fresh=[name for name in state if name not in copied])
