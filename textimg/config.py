"""Run configuration: one frozen dataclass per concern, one source of defaults.

A run is described by a `RunConfig` grouping `ModelConfig`, `DiffusionConfig`, `TrainConfig`,
`DataConfig` and, for the cascade's second stage, `SuperResConfig`. Recipes
(`textimg/recipes/*.toml`) set fields by section; a recipe may name another with
`extends = "base"` and override only what differs. The command line overrides single fields as
`section.field=value` strings, checked against the field's type, so a typo or a wrong type is
a clear `TextimgError` instead of a silently ignored setting. `to_dict`/`from_dict` round-trip
the whole config, which is saved as `config.json` in every run directory and inside every
checkpoint, so a checkpoint rebuilds its model with nothing else.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from textimg.errors import TextimgError

SAMPLERS = ("ddim", "ancestral")
"""The samplers `textimg.sampling.SAMPLERS` runs, by name: kept here so that offering them (the
command line's `--sampler`) needs no torch; tests/test_cli.py checks that the two agree."""


@dataclass(frozen=True)
class ModelConfig:
    """The U-Net, its text encoder and the weave attention between them (see docs/training.md)."""

    image_size: int = 32
    image_channels: int = 1  # 1 for grayscale, 3 for RGB; grayscale data can feed an RGB model
    patch_size: int = 1  # pixels per side folded into channels before the first conv (1 = none)
    model_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    resample: str = "resblock"  # resblock (BigGAN, ADM) | interpolate (pooling, nearest; cheaper)
    attention_resolutions: tuple[int, ...] = (8,)  # spatial sizes with self-attention
    text_resolutions: tuple[int, ...] = (8, 16)  # spatial sizes with weave attention (decoder)
    head_channels: int = 32  # channels per self-attention head
    norm_groups: int = 32  # GroupNorm groups, reduced to a divisor of the width where needed
    dropout: float = 0.0
    text_dim: int = 64
    text_depth: int = 1
    text_head_channels: int = 32
    text_ff_mult: int = 2
    context_length: int = 64  # tokens including start and end; the post used 384
    max_lines: int = 32
    relative_buckets: int = 32  # T5 relative position bias
    relative_max_distance: int = 128
    cross_attention_head_channels: int = 32  # the post used 128-channel heads
    weave_ff_mult: int = 2
    conditioning: str = "weave"  # weave (the post) | glide (text as extra self-attention keys)
    # also add the masked mean of the encoder output, through an MLP, to the timestep embedding,
    # so every ResBlock's scale-shift sees the transcript (Imagen; GLIDE adds its last token)
    pooled_text: bool = False
    # self-conditioning (Chen et al. 2022): the network also reads its own last estimate of x0,
    # from a no-grad pass on half the training steps and from the previous step when sampling
    self_condition: bool = False
    # feature-map sides whose U-Net blocks recompute their activations in the backward pass
    # instead of storing them (activation checkpointing), e.g. [256] for `sr`'s outer level
    checkpoint_resolutions: tuple[int, ...] = ()


@dataclass(frozen=True)
class DiffusionConfig:
    """The noising process and the training objective (improved-diffusion, Nichol & Dhariwal)."""

    steps: int = 1000
    schedule: str = "cosine"  # cosine | linear
    prediction: str = "eps"  # eps | v
    learned_variance: bool = False  # learned-range sigma with the hybrid loss
    vlb_weight: float = 1e-3  # lambda of L_simple + lambda * L_vlb
    text_dropout: float = 0.1  # classifier-free guidance: share of null transcripts in training
    min_snr_gamma: float = 0.0  # Min-SNR-gamma loss weights (Hang et al. 2023); 0 = plain MSE
    # uniform | importance: t drawn in proportion to the Min-SNR weights, each sample then weighted
    # equally; the same objective with lower gradient variance (needs min_snr_gamma > 0)
    timestep_sampling: str = "uniform"
    # > 0: each image's MSE counts its text pixels (those off the flat background) 1 + w times
    text_loss_weight: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, logging and checkpoint cadence. All counts are optimizer steps."""

    steps: int = 3000  # the step the run ends at; --resume continues to it
    batch_size: int = 64  # per process and micro-step
    grad_accum: int = 1
    lr: float = 2e-3
    warmup_steps: int = 100
    decay_steps: int = 3000  # cosine decay horizon, independent of `steps` so resume is exact
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0  # applied to matrices only, never to norms, embeddings or gains
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup_power: float = 0.75  # decay_t = min(ema_decay, 1 - (1 + t)^-power)
    seed: int = 0
    log_every: int = 1
    checkpoint_every: int = 500
    sample_every: int = 500  # 0 disables the sample grids
    sample_prompts: tuple[str, ...] = ("ab", "xyz", "Hi")
    sample_steps: int = 25
    sample_guidance: float = 2.0
    # torch.compile the model: "auto" = on CUDA (no graph breaks, text padded to a few fixed
    # lengths, so it compiles once per length), not on the CPU, where compiling cost 159 s for an
    # 11% faster step (docs/benchmarks.md)
    compile: bool | str = "auto"  # auto | true | false
    # auto = bf16 autocast on CUDA, fp32 on the CPU, where bf16 trained cpu-proof-short no faster
    # on a 2-core avx512_bf16 EPYC (0.94-1.00x, docs/benchmarks.md); CPUs with AMX may differ
    precision: str = "auto"  # auto | fp32 | bf16 (autocast; weights, AdamW and EMA stay fp32)
    # auto = channels-last weights for fp32 on the CPU, where oneDNN trains cpu-proof-short 1.07x
    # faster (1.18x with the fused AdamW), else contiguous: under bf16 on the CPU channels-last
    # loses its lead (session 13), and on CUDA it was not measured
    memory_format: str = "auto"  # auto | channels_last | contiguous
    fused_optimizer: bool = True  # one AdamW kernel for all tensors (a loop per tensor if false)
    device: str = "auto"  # auto | cpu | cuda
    max_minutes: float = 0.0  # stop (checkpoint first) after this much training time; 0 = no limit


@dataclass(frozen=True)
class DataConfig:
    """Where images come from; `reader.py` owns how they are read."""

    shards: tuple[str, ...] = ()  # directories, tar files or globs, one per source
    weights: tuple[float, ...] = ()  # mixing weight per source; empty means equal
    num_workers: int = 0  # DataLoader workers per process
    shuffle_buffer: int = 256  # samples held per source for shuffling


@dataclass(frozen=True)
class SuperResConfig:
    """The super-resolution stage of the cascade (the post's "embiggening"); off for base models.

    With `low_res_size > 0` the network also reads a low-res image, upsampled inside the model and
    concatenated to the noisy one. Training pairs are made from the high-res data on the fly.
    """

    low_res_size: int = 0  # side of the low-res input; 0 = a base model
    upsample: str = "bilinear"  # bilinear (the original) | bicubic (antialiased)
    downsample: str = "area"  # how training inputs are made: area (the original) | bicubic
    blur_prob: float = 0.0  # share of training inputs blurred (Gaussian, kernel 5)
    blur_sigma: tuple[float, ...] = (0.4, 0.6)  # sigma range of that blur (the original's)
    noise_conditioning: bool = False  # noise the low-res input, tell the model how much
    noise_max_step: int = 1000  # training: augmentation step drawn from [0, noise_max_step)
    sample_noise_step: int = 100  # sampling: fixed augmentation step of the low-res input
    outer_lr_scale: float = 1.0  # lr multiplier of the new outer levels (the sandwich's bread)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, saved with it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    super_resolution: SuperResConfig = field(default_factory=SuperResConfig)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "diffusion": DiffusionConfig,
    "train": TrainConfig,
    "data": DataConfig,
    "super_resolution": SuperResConfig,
}


def to_dict(config: RunConfig) -> dict[str, dict[str, Any]]:
    """Plain nested dict (tuples become lists) for JSON, TOML and checkpoints."""
    return {
        name: {key: list(v) if isinstance(v, tuple) else v for key, v in section.items()}
        for name, section in dataclasses.asdict(config).items()
    }


def from_dict(data: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """Build a config from nested sections, each field checked; unknown names are errors."""
    base = base or RunConfig()
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise TextimgError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    sections = {}
    for name, cls in SECTIONS.items():
        current = getattr(base, name)
        values = data.get(name, {})
        if not isinstance(values, dict):
            raise TextimgError(f"config section [{name}] must be a table")
        sections[name] = dataclasses.replace(
            current, **{key: _checked(cls, key, value, name) for key, value in values.items()}
        )
    return RunConfig(**sections)


def load_recipe(name_or_path: str) -> RunConfig:
    """A recipe by name (`tiny`, `base64`, `base`, `finetune`) or a path to a TOML file."""
    data = _read_recipe(name_or_path, seen=())
    return from_dict(data)


def apply_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply `section.field=value` strings; values are TOML literals, bare words are strings."""
    data: dict[str, dict[str, Any]] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise TextimgError(f"override {item!r} must look like section.field=value")
        data.setdefault(section, {})[name] = _parse_literal(raw.strip())
    return from_dict(data, base=config)


def recipe_names() -> list[str]:
    """Names of the recipes shipped inside the package."""
    folder = resources.files("textimg") / "recipes"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def _read_recipe(name_or_path: str, seen: tuple[str, ...]) -> dict[str, Any]:
    if name_or_path in seen:
        raise TextimgError(f"recipe loop: {' -> '.join((*seen, name_or_path))}")
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise TextimgError(f"recipe file {path} does not exist")
        text = path.read_text(encoding="utf-8")
    else:
        packaged = resources.files("textimg") / "recipes" / f"{name_or_path}.toml"
        if not packaged.is_file():
            raise TextimgError(
                f"unknown recipe {name_or_path!r}; choose one of {', '.join(recipe_names())} "
                "or give a path to a .toml file"
            )
        text = packaged.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TextimgError(f"recipe {name_or_path}: {error}") from None
    parent = data.pop("extends", None)
    if parent is None:
        return data
    merged = _read_recipe(parent, seen=(*seen, name_or_path))
    for section, values in data.items():
        merged.setdefault(section, {}).update(values)
    return merged


def _parse_literal(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _checked(cls: type, name: str, value: Any, section: str) -> Any:
    """Coerce `value` to the declared type of `cls.name`, or explain what was expected."""
    hints = typing.get_type_hints(cls)
    if name not in hints:
        known = ", ".join(f.name for f in dataclasses.fields(cls))
        raise TextimgError(f"unknown setting {section}.{name}; known: {known}")
    expected = hints[name]
    try:
        return _coerce(value, expected)
    except (TypeError, ValueError):
        raise TextimgError(
            f"{section}.{name} must be {_type_name(expected)}, got {value!r}"
        ) from None


def _coerce(value: Any, expected: Any) -> Any:
    origin = typing.get_origin(expected)
    if origin is types.UnionType:  # `bool | str`: the first member the value fits
        for member in typing.get_args(expected):
            try:
                return _coerce(value, member)
            except TypeError:
                continue
        raise TypeError
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(expected)
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise TypeError
        return tuple(_coerce(item, item_type) for item in value)
    if expected is bool:
        if not isinstance(value, bool):
            raise TypeError
        return value
    if expected is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if expected is str and isinstance(value, str):
        return value
    raise TypeError


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _type_name(expected: Any) -> str:
    if typing.get_origin(expected) is types.UnionType:
        return " or ".join(_type_name(member) for member in typing.get_args(expected))
    if typing.get_origin(expected) is tuple:
        return f"a list of {_TYPE_NAMES[typing.get_args(expected)[0]].split()[-1]}s"
    return _TYPE_NAMES[expected]
