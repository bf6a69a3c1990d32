"""Run configuration: one frozen dataclass per concern, one source of defaults.

A run is described by a `RunConfig` grouping `ModelConfig`, `DiffusionConfig`, `TrainConfig`,
`DataConfig` and, for the cascade's second stage, `SuperResConfig`; how one process runs it (its
device, compiling, weight layout, optimizer kernel) is its `RuntimeConfig`, which is not saved:
a run resumed on another machine is the same run. Recipes
(`textimg/recipes/*.toml`) set fields by section; a recipe may name another with
`extends = "base"` and override only what differs. The command line overrides single fields as
`section.field=value` strings, checked against the field's type, so a typo or a wrong type is
a clear `TextimgError` instead of a silently ignored setting. Each field also declares its rule
next to it: a fixed set of values (`_choice`, listed by `choices` for the command line's help) or
a range (`_bounded`; where 0 is allowed, the field's comment says what it means). Every rule is
checked whenever a config is made, so a bad recipe or override fails at load, before any model
is built, in one line that names the setting and what it allows. `to_dict`/`from_dict` round-trip
the whole config but its run-time settings, which is saved as `config.json` in every run
directory and inside every checkpoint, so a checkpoint rebuilds its model with nothing else.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import tomllib

from textimg.choices import DOWNSAMPLE_MODES
from textimg.distributed import DEVICES
from textimg.errors import TextimgError, check_choice
from textimg.recipe_files import read_recipe, spelled_value


@dataclass(frozen=True)
class _Bounds:
    """The range a numeric setting must lie in; None leaves that side open."""

    at_least: float | None = None
    above: float | None = None
    below: float | None = None
    at_most: float | None = None

    def admits(self, value: float) -> bool:
        return value == value and not (  # NaN is in no range
            (self.at_least is not None and value < self.at_least)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
            or (self.at_most is not None and value > self.at_most)
        )

    def __str__(self) -> str:
        if self.at_least is not None and self.at_most is not None:
            return f"between {self.at_least:g} and {self.at_most:g}"
        parts = [
            f"{words} {limit:g}"
            for words, limit in (
                ("at least", self.at_least),
                ("above", self.above),
                ("below", self.below),
                ("at most", self.at_most),
            )
            if limit is not None
        ]
        return " and ".join(parts)


def _choice(*values: Any) -> Any:
    """A setting with a fixed set of values, the first its default: checked whenever a config is
    made (a recipe, an override, a saved run) and listed by `choices`."""
    return field(default=values[0], metadata={"choices": values})


def _bounded(
    default: Any,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> Any:
    """A number (or each number of a list) held to a range, checked like `_choice`."""
    bounds = _Bounds(at_least=at_least, above=above, below=below, at_most=at_most)
    return field(default=default, metadata={"bounds": bounds})


class _Checked:
    """Every field's declared rule, then the rules between fields, checked when an instance is
    made: a bad value fails in one line naming the setting before any model is built."""

    def __post_init__(self) -> None:
        section = _SECTION_NAMES[type(self)]
        for spec in dataclasses.fields(self):
            name, value = f"{section}.{spec.name}", getattr(self, spec.name)
            if "choices" in spec.metadata:
                allowed = spec.metadata["choices"]
                spelled = [spelled_value(choice) for choice in allowed]
                check_choice(name, spelled_value(value), spelled)
                # A recipe's "true" and its true are one setting; keep the declared value.
                object.__setattr__(self, spec.name, allowed[spelled.index(spelled_value(value))])
            bounds = spec.metadata.get("bounds")
            numbers = value if isinstance(value, tuple) else (value,)
            if bounds is not None and not all(bounds.admits(number) for number in numbers):
                subject = f"every entry of {name}" if isinstance(value, tuple) else name
                raise TextimgError(f"{subject} must be {bounds}, not {spelled_value(value)}")
        self._check_together(section)

    def _check_together(self, section: str) -> None:
        """Rules that tie fields of one section together; none unless a section has some."""


@dataclass(frozen=True)
class ModelConfig(_Checked):
    """The U-Net, its text encoder and the weave attention between them (see docs/training.md)."""

    image_size: int = _bounded(32, at_least=1)
    # 1 for grayscale, 3 for RGB; grayscale data can feed an RGB model
    image_channels: int = _choice(1, 3)
    model_channels: int = _bounded(32, at_least=1)
    channel_mult: tuple[int, ...] = _bounded((1, 2, 2), at_least=1)  # width per level, outer first
    num_res_blocks: int = _bounded(1, at_least=1)
    # spatial sizes with self-attention besides the middle block's; empty = none
    attention_resolutions: tuple[int, ...] = _bounded((8,), at_least=1)
    # spatial sizes with weave attention (decoder); empty = the transcript only through
    # `pooled_text` (or nowhere)
    text_resolutions: tuple[int, ...] = _bounded((8, 16), at_least=1)
    head_channels: int = _bounded(32, at_least=1)  # channels per self-attention head
    # GroupNorm groups, reduced to a divisor of the width where needed
    norm_groups: int = _bounded(32, at_least=1)
    dropout: float = _bounded(0.0, at_least=0, below=1)  # 0 = off
    text_dim: int = _bounded(64, at_least=1)
    text_depth: int = _bounded(1, at_least=1)
    text_head_channels: int = _bounded(32, at_least=1)
    text_ff_mult: int = _bounded(2, at_least=1)
    # tokens including start and end (so at least one character); the post used 384
    context_length: int = _bounded(64, at_least=3)
    max_lines: int = _bounded(32, at_least=1)
    # T5 relative position bias: half the buckets per direction, the first half of those exact
    # distances, the rest log-spaced up to relative_max_distance
    relative_buckets: int = _bounded(32, at_least=4)
    relative_max_distance: int = _bounded(128, at_least=1)
    # the post used 128-channel heads
    cross_attention_head_channels: int = _bounded(32, at_least=1)
    weave_ff_mult: int = _bounded(2, at_least=1)
    # weave (the post) | glide (text as extra self-attention keys, benchmarks/attention.py)
    conditioning: str = _choice("weave", "glide")
    # also add the masked mean of the encoder output, through an MLP, to the timestep embedding,
    # so every ResBlock's scale-shift sees the transcript (Imagen; GLIDE adds its last token)
    pooled_text: bool = False
    # self-conditioning (Chen et al. 2022): the network also reads its own last estimate of x0,
    # from a no-grad pass on half the training steps and from the previous step when sampling
    self_condition: bool = False
    # feature-map sides whose U-Net blocks recompute their activations in the backward pass
    # instead of storing them (activation checkpointing), e.g. [256] for `sr`'s outer level;
    # empty = none
    checkpoint_resolutions: tuple[int, ...] = _bounded((), at_least=1)

    def _check_together(self, section: str) -> None:
        if not self.channel_mult:
            raise TextimgError(f"{section}.channel_mult must name at least one level")
        halvings = 2 ** (len(self.channel_mult) - 1)
        if self.image_size % halvings:
            raise TextimgError(
                f"{section}.image_size {self.image_size} must be a multiple of {halvings}: "
                f"{section}.channel_mult has {len(self.channel_mult)} levels, each half the last"
            )
        # A side the U-Net has no level of would silently build nothing (a text-blind model).
        levels = [self.image_size >> level for level in range(len(self.channel_mult))]
        for name in ("attention_resolutions", "text_resolutions"):
            missing = [side for side in getattr(self, name) if side not in levels]
            if missing:
                raise TextimgError(
                    f"{section}.{name} names {spelled_value(missing)}, which this model has no "
                    f"level of; its levels are {spelled_value(levels)} ({section}.image_size "
                    f"{self.image_size} halved at each {section}.channel_mult step)"
                )
        if self.relative_max_distance <= self.relative_buckets // 4:
            raise TextimgError(
                f"{section}.relative_max_distance must be above relative_buckets / 4 "
                f"({self.relative_buckets // 4}), where the exact distances end"
            )


@dataclass(frozen=True)
class DiffusionConfig(_Checked):
    """The noising process and the training objective (improved-diffusion, Nichol & Dhariwal)."""

    steps: int = _bounded(1000, at_least=1)
    schedule: str = _choice("cosine", "linear")
    prediction: str = _choice("eps", "v")
    learned_variance: bool = False  # learned-range sigma with the hybrid loss
    vlb_weight: float = _bounded(1e-3, above=0)  # lambda of L_simple + lambda * L_vlb
    # classifier-free guidance: share of null transcripts in training; 0 = none (no guidance)
    text_dropout: float = _bounded(0.1, at_least=0, below=1)
    # Min-SNR-gamma loss weights (Hang et al. 2023); 0 = off, the plain MSE
    min_snr_gamma: float = _bounded(0.0, at_least=0)
    # uniform | importance: t drawn in proportion to the Min-SNR weights, each sample then weighted
    # equally; the same objective with lower gradient variance (needs min_snr_gamma > 0)
    timestep_sampling: str = _choice("uniform", "importance")

    def _check_together(self, section: str) -> None:
        if self.timestep_sampling == "importance" and not self.min_snr_gamma:
            raise TextimgError(
                f"{section}.timestep_sampling = 'importance' draws t by the Min-SNR weights, so "
                f"it needs {section}.min_snr_gamma > 0 (with plain weights it is uniform sampling)"
            )


@dataclass(frozen=True)
class TrainConfig(_Checked):
    """Optimisation, logging and checkpoint cadence. All counts are optimizer steps."""

    steps: int = _bounded(3000, at_least=1)  # the step the run ends at; --resume continues to it
    batch_size: int = _bounded(64, at_least=1)  # per process and micro-step
    grad_accum: int = _bounded(1, at_least=1)  # micro-steps per optimizer step; 1 = none
    lr: float = _bounded(2e-3, at_least=0)  # 0 = the weights stay as they start
    warmup_steps: int = _bounded(100, at_least=0)  # 0 = no warmup
    # cosine decay horizon, independent of `steps` so resume is exact
    decay_steps: int = _bounded(3000, at_least=1)
    # the lr the cosine ends at, as a share of `lr`: 0 = decays to zero, 1 = constant
    min_lr_ratio: float = _bounded(0.1, at_least=0, at_most=1)
    # applied to matrices only, never to norms, embeddings or gains; 0 = off
    weight_decay: float = _bounded(0.0, at_least=0)
    beta1: float = _bounded(0.9, at_least=0, below=1)  # 0 = no momentum
    beta2: float = _bounded(0.999, at_least=0, below=1)
    grad_clip: float = _bounded(1.0, at_least=0)  # largest gradient norm; 0 = no clipping
    # 0 = the EMA weights are the raw weights (no averaging)
    ema_decay: float = _bounded(0.999, at_least=0, below=1)
    # decay_t = min(ema_decay, 1 - (1 + t)^-power)
    ema_warmup_power: float = _bounded(0.75, above=0)
    seed: int = 0  # any integer, 0 included
    log_every: int = _bounded(1, at_least=1)
    # 0 = only at the last step (and when a run is stopped or out of time)
    checkpoint_every: int = _bounded(500, at_least=0)
    sample_every: int = _bounded(500, at_least=0)  # 0 = no sample grids
    sample_prompts: tuple[str, ...] = ("ab", "xyz", "Hi")
    sample_steps: int = _bounded(25, at_least=1)
    # 1 = no guidance, 0 = the unconditional model
    sample_guidance: float = _bounded(2.0, at_least=0)
    # stop (checkpoint first) after this much training time; 0 = no limit
    max_minutes: float = _bounded(0.0, at_least=0)

    def _check_together(self, section: str) -> None:
        if self.sample_every and not self.sample_prompts:
            raise TextimgError(
                f"{section}.sample_prompts is empty but {section}.sample_every is "
                f"{self.sample_every}: give prompts, or set sample_every = 0 for no sample grids"
            )


@dataclass(frozen=True)
class DataConfig(_Checked):
    """Where images come from; `reader.py` owns how they are read."""

    shards: tuple[str, ...] = ()  # directories, tar files or globs, one per source
    # mixing weight per source (0 = not drawn); empty means equal
    weights: tuple[float, ...] = ()
    # DataLoader workers per process; 0 = read in the training process itself
    num_workers: int = _bounded(0, at_least=0)
    # samples held per source for shuffling; 1 = no shuffling
    shuffle_buffer: int = _bounded(256, at_least=1)


@dataclass(frozen=True)
class SuperResConfig(_Checked):
    """The super-resolution stage of the cascade (the post's "embiggening"); off for base models.

    With `low_res_size > 0` the network also reads a low-res image, upsampled inside the model and
    concatenated to the noisy one. Training pairs are made from the high-res data on the fly.
    """

    low_res_size: int = _bounded(0, at_least=0)  # side of the low-res input; 0 = a base model
    # how the model enlarges its low-res input: bilinear (the original) | bicubic (antialiased)
    upsample: str = _choice("bilinear", "bicubic")
    # how training inputs are made: area (the original) | bicubic
    downsample: str = _choice(*DOWNSAMPLE_MODES)
    # share of training inputs blurred (Gaussian, kernel 5); 0 = none
    blur_prob: float = _bounded(0.0, at_least=0, at_most=1)
    # sigma range of that blur (the original's)
    blur_sigma: tuple[float, ...] = _bounded((0.4, 0.6), above=0)
    noise_conditioning: bool = False  # noise the low-res input, tell the model how much
    # training: augmentation step drawn from [0, noise_max_step)
    noise_max_step: int = _bounded(1000, at_least=1)
    # sampling: fixed augmentation step of the low-res input; 0 = the least noise
    sample_noise_step: int = _bounded(100, at_least=0)
    # lr multiplier of the new outer levels (the sandwich's bread)
    outer_lr_scale: float = _bounded(1.0, above=0)


@dataclass(frozen=True)
class RuntimeConfig(_Checked):
    """How this process runs a training: where, compiled or not, in which weight layout and with
    which optimizer kernel. None of it changes what is trained (to rounding), so none of it is
    saved with the run: `to_dict` leaves it out and `RunConfig` equality ignores it."""

    # torch.compile the model: "auto" = on CUDA (no graph breaks, text padded to a few fixed
    # lengths, so it compiles once per length), not on the CPU, where compiling cost 159 s for an
    # 11% faster step (docs/benchmarks.md)
    compile: bool | str = _choice("auto", True, False)
    # auto = channels-last weights on the CPU, where oneDNN trains cpu-proof-short 1.07x faster
    # (1.18x with the fused AdamW, docs/benchmarks.md), contiguous on CUDA (not measured there).
    # The step itself runs under bf16 autocast on CUDA and in fp32 on the CPU, where bf16 trained
    # no faster (0.94-1.00x, docs/training.md)
    memory_format: str = _choice("auto", "channels_last", "contiguous")
    fused_optimizer: bool = True  # one AdamW kernel for all tensors (a loop per tensor if false)
    # auto = the local GPU when there is one, else the CPU (CUDA_VISIBLE_DEVICES picks a GPU)
    device: str = _choice(*DEVICES)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs: all but `runtime` is what the run is, saved with it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    super_resolution: SuperResConfig = field(default_factory=SuperResConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig, compare=False)

    def __post_init__(self) -> None:
        """The rules between sections: step counts within the diffusion process, where used."""
        steps, sr = self.diffusion.steps, self.super_resolution
        if self.train.sample_every and self.train.sample_steps > steps:
            raise TextimgError(
                f"train.sample_steps {self.train.sample_steps} is more than diffusion.steps {steps}"
            )
        if sr.low_res_size and sr.noise_conditioning and sr.noise_max_step > steps:
            raise TextimgError(
                f"super_resolution.noise_max_step {sr.noise_max_step} is more than "
                f"diffusion.steps {steps}"
            )


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "diffusion": DiffusionConfig,
    "train": TrainConfig,
    "data": DataConfig,
    "super_resolution": SuperResConfig,
    "runtime": RuntimeConfig,
}
UNSAVED = "runtime"
"""The section `to_dict` leaves out: where a run ran, not what it is."""
_SECTION_NAMES = {cls: name for name, cls in SECTIONS.items()}

RETIRED: dict[str, Any] = {
    "model.patch_size": 1,
    "model.resample": "resblock",
    "diffusion.text_loss_weight": 0.0,
    "train.precision": "auto",
}
"""Settings textimg no longer has, each with the value whose behaviour it kept. A config saved
before (`config.json`, a checkpoint) that holds that value still loads; any other value is
refused, since textimg can no longer build what it describes (docs/training.md, "What helped")."""

MOVED: dict[str, str] = {
    f"train.{name}": f"runtime.{name}"
    for name in ("compile", "memory_format", "fused_optimizer", "device")
}
"""Run-time settings by the names they have in the train section, which `--set` and recipes
still use and configs saved with them hold: each is read as its runtime setting."""


def choices(section: str, name: str) -> tuple[str, ...]:
    """The values `section.name` allows, spelled as in a recipe or `--set` (`true`, `3`), the
    default first; () for a setting that takes any value of its type."""
    section, _, name = MOVED.get(f"{section}.{name}", f"{section}.{name}").partition(".")
    cls = SECTIONS.get(section)
    spec = next((f for f in dataclasses.fields(cls) if f.name == name), None) if cls else None
    if spec is None:
        raise TextimgError(f"unknown setting {section}.{name}")
    return tuple(spelled_value(choice) for choice in spec.metadata.get("choices", ()))


def to_dict(config: RunConfig) -> dict[str, dict[str, Any]]:
    """Plain nested dict (tuples become lists) for JSON, TOML and checkpoints: what the run is,
    so without its run-time settings."""
    return {
        name: {key: list(v) if isinstance(v, tuple) else v for key, v in section.items()}
        for name, section in dataclasses.asdict(config).items()
        if name != UNSAVED
    }


def from_dict(data: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """Build a config from nested sections, each field checked; unknown names are errors."""
    base = base or RunConfig()
    data = _moved_to_runtime(data)
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise TextimgError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    sections = {}
    for name, cls in SECTIONS.items():
        current = getattr(base, name)
        values = data.get(name, {})
        if not isinstance(values, dict):
            raise TextimgError(f"config section [{name}] must be a table")
        kept = {key: value for key, value in values.items() if not _retired(name, key, value)}
        sections[name] = dataclasses.replace(
            current, **{key: _checked(cls, key, value, name) for key, value in kept.items()}
        )
    return RunConfig(**sections)


def load_recipe(name_or_path: str) -> RunConfig:
    """A recipe by name (`tiny`, `base64`, `base`, `finetune`) or a path to a TOML file."""
    data = read_recipe(name_or_path, None, seen=())
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
    updated = from_dict(data, base=config)  # a setting's own range speaks first
    for section, values in data.items():
        for name, value in values.items():
            if not _all_finite(value):
                raise TextimgError(f"{section}.{name} must be finite (not nan or inf), got {value}")
    return updated


def _moved_to_runtime(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the `MOVED` settings in the runtime section; one also given there wins."""
    moved = {
        key: dict(values) if isinstance(values, dict) else values for key, values in data.items()
    }
    runtime: dict[str, Any] = {}
    for old, new in MOVED.items():
        section, name = old.split(".")
        values = moved.get(section)
        if isinstance(values, dict) and name in values:
            runtime[new.split(".")[1]] = values.pop(name)
    if runtime:
        given = moved.get(UNSAVED, {})
        moved[UNSAVED] = runtime | given if isinstance(given, dict) else given
    return moved


def _retired(section: str, name: str, value: Any) -> bool:
    """Whether `section.name` is a retired setting at the value textimg kept (then it is dropped);
    a retired setting at any other value is refused."""
    setting = f"{section}.{name}"
    if setting not in RETIRED:
        return False
    if value != RETIRED[setting]:
        raise TextimgError(
            f'{setting} was removed from textimg (docs/training.md, "What helped"); only its '
            f"former default {spelled_value(RETIRED[setting])} still loads, not "
            f"{spelled_value(value)}"
        )
    return True


def _all_finite(value: Any) -> bool:
    """False for a TOML `nan` or `inf`, alone or in a list: no setting means them, and one that
    admits any number (a list of data weights) would carry them into training."""
    if isinstance(value, float):
        return math.isfinite(value)
    return all(_all_finite(item) for item in value) if isinstance(value, list) else True


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
