"""Samplers and the one classifier-free-guidance function they share.

Public entry point for everyone who needs images from a model (the CLI, the trainer's sample
grids, `textimg eval`):

    model, diffusion, config = checkpoint.load_checkpoint(path)
    images = sampling.sample(model, diffusion, ["hello"], steps=50, guidance=3.0, seed=0,
                             sampler="ddim")   # uint8 array (N, H, W, C)

Each sampler is a small pure function with one signature, `(denoise, diffusion, noise, draw)
-> x0`, walking a respaced `GaussianDiffusion`; `denoise(x_t, t, x0_estimate)` is the network
with guidance already applied (see `guided_denoiser`), told the previous step's clean-image
estimate (None at the first step; only a self-conditioned network reads it), and
`draw(shape)` gives fresh Gaussian noise
(`GroupNoise`). The same seed gives the same images; with one seed per prompt
(`seed=[...]`), a prompt's images do not depend on which prompts share its batch, which lets
`textimg eval` sample many prompts per network call.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from textimg.choices import SAMPLERS
from textimg.diffusion import GaussianDiffusion
from textimg.errors import TextimgError, TextimgWarning, check_choice
from textimg.images import to_uint8
from textimg.model.tokenizer import CharTokenizer, TokenBatch, unknown_characters
from textimg.super_resolution import sampling_inputs

Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
NoiseDraw = Callable[[tuple[int, ...]], torch.Tensor]


class GroupNoise:
    """Gaussian noise for a batch of equal, contiguous row groups, each drawn from its own seed.

    Group g's rows get exactly the numbers a batch of only that group would get from its seed,
    so batching prompts together changes no draw (floating-point sums inside the network may
    still differ in the last bits between batch sizes).
    """

    def __init__(self, seeds: Sequence[int], rows: int) -> None:
        if not seeds or rows % len(seeds):
            raise TextimgError(f"{rows} rows cannot be split evenly among {len(seeds)} seeds")
        self.generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        self.group_size = rows // len(seeds)

    def __call__(self, shape: tuple[int, ...]) -> torch.Tensor:
        rest = tuple(shape[1:])
        return torch.cat([torch.randn((self.group_size, *rest), generator=generator)
                          for generator in self.generators])  # fmt: skip

    def groups(self) -> list[tuple[slice, torch.Generator]]:
        """(rows, generator) of each group, for draws that need the generator itself."""
        size = self.group_size
        return [(slice(g * size, (g + 1) * size), gen) for g, gen in enumerate(self.generators)]


def guided_denoiser(
    model: nn.Module,
    tokens: torch.Tensor,
    null_tokens: torch.Tensor,
    scale: float,
    model_inputs: dict[str, torch.Tensor] | None = None,
) -> Denoiser:
    """Classifier-free guidance (Ho & Salimans 2022): out = uncond + scale * (cond - uncond).

    scale 1 is the conditional model, 0 the unconditional one. Only the prediction channels are
    mixed; a learned variance comes from the conditional branch (GLIDE). Both branches run as
    one batch, and both see the same `model_inputs` (a super-resolution model's low-res image:
    only the transcript is dropped, as in the original). Scale 1 runs the conditional branch
    only. A self-conditioned model gets the previous guided x0 estimate in both branches.
    """
    model_inputs = model_inputs or {}
    doubled = {name: torch.cat([value, value]) for name, value in model_inputs.items()}
    self_conditioned = model.config.self_condition

    def with_estimate(
        inputs: dict[str, torch.Tensor], estimate: torch.Tensor | None, copies: int
    ) -> dict[str, torch.Tensor]:
        if not self_conditioned or estimate is None:
            return inputs
        return inputs | {"self_cond": torch.cat([estimate] * copies)}

    if scale == 1:  # the conditional model alone: half the work, the same prediction

        def conditional(
            x: torch.Tensor, t: torch.Tensor, estimate: torch.Tensor | None
        ) -> torch.Tensor:
            return model(x, t, tokens, **with_estimate(model_inputs, estimate, 1)).float()

        return conditional

    def denoise(x: torch.Tensor, t: torch.Tensor, estimate: torch.Tensor | None) -> torch.Tensor:
        output = model(
            torch.cat([x, x]),
            torch.cat([t, t]),
            torch.cat([tokens, null_tokens]),
            **with_estimate(doubled, estimate, 2),
        )
        cond, uncond = output.float().chunk(2)
        channels = x.shape[1]
        mixed = uncond[:, :channels] + scale * (cond[:, :channels] - uncond[:, :channels])
        return torch.cat([mixed, cond[:, channels:]], dim=1)

    return denoise


def _step(
    diffusion: GaussianDiffusion, index: int, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step index tensor and the original timesteps the network expects at that index."""
    i = torch.full((x.shape[0],), index, dtype=torch.long, device=x.device)
    return i, diffusion.timesteps.to(x.device)[i].float()


def ancestral_sample(
    denoise: Denoiser, diffusion: GaussianDiffusion, noise: torch.Tensor, draw: NoiseDraw
) -> torch.Tensor:
    """Ancestral sampling of p(x_{t-1} | x_t) (Ho et al. 2020), respaced (Nichol & Dhariwal)."""
    x, estimate = noise, None
    for index in reversed(range(diffusion.num_steps)):
        i, t = _step(diffusion, index, x)
        prediction = diffusion.interpret(denoise(x, t, estimate), x, i)
        estimate = prediction.x0
        x = diffusion.posterior_mean(prediction.x0, x, i)
        if index > 0:
            fresh = draw(tuple(x.shape)).to(x.device)
            x = x + torch.exp(0.5 * prediction.log_variance) * fresh
    return x


def ddim_sample(
    denoise: Denoiser, diffusion: GaussianDiffusion, noise: torch.Tensor, draw: NoiseDraw
) -> torch.Tensor:
    """Deterministic DDIM, eta = 0 (Song et al. 2021); `draw` is unused by design."""
    x, estimate = noise, None
    for index in reversed(range(diffusion.num_steps)):
        i, t = _step(diffusion, index, x)
        prediction = diffusion.interpret(denoise(x, t, estimate), x, i)
        estimate = prediction.x0
        previous = diffusion.alphas_cumprod_prev[index].item()
        x = previous**0.5 * prediction.x0 + (1 - previous) ** 0.5 * prediction.eps
    return x


SAMPLE_LOOPS: dict[str, Callable[..., torch.Tensor]] = {
    "ancestral": ancestral_sample,
    "ddim": ddim_sample,
}


def out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an allocation that failed: CUDA's `torch.OutOfMemoryError`, the CPU
    allocator's plain RuntimeError (it names no type of its own) or Python's MemoryError."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    message = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in message or "not enough memory" in message
    )


def images_that_fit(model: nn.Module, diffusion: GaussianDiffusion, prompt: str, asked: int) -> int:
    """After `asked` images at once ran out of memory: the most, halving from `asked`, that one
    guided sampling step of `prompt` draws without running out (0 when not even one does), so
    the error can say how many fit. One step holds what every step holds: the guided batch."""
    count = asked // 2
    while count >= 1:
        try:
            sample(model, diffusion, [prompt] * count, steps=1, guidance=2.0, seed=0)
            return count
        except (RuntimeError, MemoryError) as error:
            if not out_of_memory(error):
                raise
            count //= 2
    return 0


def warn_prompt_tokens(prompts: Sequence[str], batch: TokenBatch, max_characters: int) -> None:
    """Say which prompts the model cannot read in full: those cut to its text length, and those
    with characters outside its vocabulary (read as unknown, so never drawn)."""
    if batch.truncated:
        warnings.warn(
            f"{len(batch.truncated)} prompt(s) longer than the model's {max_characters} "
            f"characters are cut to fit (first: {prompts[batch.truncated[0]][:40]!r})",
            TextimgWarning,
            stacklevel=3,
        )
    if batch.unknown:
        first = prompts[batch.unknown[0]]
        warnings.warn(
            f"{len(batch.unknown)} prompt(s) hold characters the model's vocabulary lacks, read "
            f"as unknown (first: {first[:40]!r}: {unknown_characters(first)!r})",
            TextimgWarning,
            stacklevel=3,
        )


@torch.no_grad()
def sample(
    model: nn.Module,
    diffusion: GaussianDiffusion,
    prompts: list[str],
    steps: int = 50,
    guidance: float = 3.0,
    seed: int | Sequence[int] = 0,
    sampler: str = "ddim",
    low_res: np.ndarray | None = None,
) -> np.ndarray:
    """Images for `prompts` as uint8 (N, H, W, C); a pure function of the arguments and weights.

    `seed` is one seed for the batch, or one per equal, contiguous group of prompts (e.g. one
    per prompt of `[a, a, b, b]` for two samples each): then each group's images are those a
    call with only that group would give, so callers can batch many prompts per network call.
    A super-resolution model also needs `low_res`, one uint8 (s, s, C) image per prompt (a base
    model's output): that is the cascade's second stage. Prompts longer than the model's context
    are truncated with a warning.
    """
    check_choice("sampler", sampler, SAMPLERS)
    if not prompts:
        raise TextimgError("no prompts to sample")
    config = model.config
    tokenizer = CharTokenizer(config.context_length)
    batch = tokenizer.encode_batch(prompts, pad_to=3)  # room for the null transcript
    warn_prompt_tokens(prompts, batch, tokenizer.max_characters)
    device = next(model.parameters()).device
    tokens = batch.tokens.to(device)
    null_tokens = tokenizer.null_tokens(len(prompts), tokens.shape[1]).to(device)
    draw = GroupNoise([seed] if isinstance(seed, int) else seed, len(prompts))
    shape = (len(prompts), config.image_channels, config.image_size, config.image_size)
    noise = draw(shape).to(device)
    super_resolution = model.super_resolution
    if bool(super_resolution.low_res_size) != (low_res is not None):
        raise TextimgError(
            "a super-resolution model needs low-res images and a base model takes none"
        )
    model_inputs: dict[str, torch.Tensor] = {}
    if low_res is not None:
        if len(low_res) != len(prompts):
            raise TextimgError(f"{len(low_res)} low-res images for {len(prompts)} prompts")
        parts = [
            sampling_inputs(super_resolution, low_res[rows], config.image_channels, diffusion,
                            generator, device)
            for rows, generator in draw.groups()
        ]  # fmt: skip
        model_inputs = {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
    was_training = model.training
    model.eval()
    try:
        denoise = guided_denoiser(model, tokens, null_tokens, guidance, model_inputs)
        images = SAMPLE_LOOPS[sampler](denoise, diffusion.respace(steps), noise, draw)
    finally:
        model.train(was_training)
    return to_uint8(images)
