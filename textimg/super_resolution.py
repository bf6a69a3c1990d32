"""The cascade's second stage outside the network: training pairs and low-res inputs.

The super-resolution model (a `UNet` with `super_resolution.low_res_size` set) learns from the
same high-res shards as a base model: each batch is degraded on the fly to the low-res size
(area averaging as the original's `F.interpolate(mode="area")`, or antialiased bicubic), optionally
blurred (the original's kernel-5 Gaussian, sigma ~ U(0.4, 0.6), with probability `blur_prob`),
and, with noise conditioning, noised to a random diffusion step that the model is told (Ho et al.
2021, "Cascaded Diffusion Models", conditioning augmentation; the author added it in mid 2022).
At sampling the low-res input is the base model's uint8 output, noised to the fixed
`sample_noise_step`. All draws come from the caller's generator, so runs stay resumable.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from textimg.choices import DOWNSAMPLE_MODES
from textimg.config import RunConfig, SuperResConfig
from textimg.diffusion import GaussianDiffusion
from textimg.errors import TextimgError
from textimg.images import to_uint8

BLUR_KERNEL = 5


def downsample(images: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """(B, C, S, S) in [-1, 1] to (B, C, size, size), antialiased either way."""
    if mode == "area":
        return F.interpolate(images, size=(size, size), mode="area")
    if mode == "bicubic":
        resized = F.interpolate(
            images, size=(size, size), mode="bicubic", align_corners=False, antialias=True
        )
        return resized.clamp(-1, 1)
    raise TextimgError(
        f"super_resolution.downsample must be one of {', '.join(DOWNSAMPLE_MODES)}, not {mode!r}"
    )


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own sigma (B,), a separable kernel of `BLUR_KERNEL` taps."""
    offsets = torch.arange(BLUR_KERNEL, dtype=images.dtype, device=images.device)
    offsets = offsets - BLUR_KERNEL // 2
    weights = torch.exp(-(offsets[None] ** 2) / (2 * sigma[:, None].to(images) ** 2))
    weights = weights / weights.sum(dim=1, keepdim=True)  # (B, K)
    batch, channels, height, width = images.shape
    pad = BLUR_KERNEL // 2
    # Every image is its own group of channels, so one grouped conv applies per-sample kernels.
    flat = images.reshape(1, batch * channels, height, width)
    kernel = weights.repeat_interleave(channels, dim=0)  # (B*C, K)
    flat = F.conv2d(F.pad(flat, (pad, pad, 0, 0), mode="reflect"), kernel[:, None, None, :],
                    groups=batch * channels)  # fmt: skip
    flat = F.conv2d(F.pad(flat, (0, 0, pad, pad), mode="reflect"), kernel[:, None, :, None],
                    groups=batch * channels)  # fmt: skip
    return flat.reshape(batch, channels, height, width)


def augment_low_res(
    low_res: torch.Tensor,
    steps: torch.Tensor,
    diffusion: GaussianDiffusion,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """The model inputs for a low-res image noised to `steps` (B,) of the training process."""
    noise = torch.randn(low_res.shape, generator=generator).to(low_res.device)
    steps = steps.to(low_res.device)
    noised = diffusion.q_sample(low_res, steps, noise)
    return {"low_res": noised, "low_res_t": diffusion.timesteps.to(steps.device)[steps].float()}


def training_inputs(
    config: SuperResConfig,
    images: torch.Tensor,
    diffusion: GaussianDiffusion,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """The extra model inputs for one batch of high-res `images`; none for a base model."""
    if not config.low_res_size:
        return {}
    low_res = downsample(images, config.low_res_size, config.downsample)
    if config.blur_prob > 0:
        batch = images.shape[0]
        chosen = torch.rand(batch, generator=generator) < config.blur_prob
        low, high = min(config.blur_sigma), max(config.blur_sigma)
        sigma = low + (high - low) * torch.rand(batch, generator=generator)
        blurred = gaussian_blur(low_res, sigma.to(low_res.device))
        low_res = torch.where(chosen.to(low_res.device)[:, None, None, None], blurred, low_res)
    if not config.noise_conditioning:
        return {"low_res": low_res}
    steps = torch.randint(0, max(1, config.noise_max_step), (images.shape[0],), generator=generator)
    return augment_low_res(low_res, steps, diffusion, generator)


def sampling_inputs(
    config: SuperResConfig,
    low_res: np.ndarray,
    channels: int,
    diffusion: GaussianDiffusion,
    generator: torch.Generator,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Model inputs from uint8 low-res images (N, s, s, C) such as `sampling.sample` returns.

    Grayscale and RGB are converted to the model's channels; the side must be `low_res_size`.
    """
    if low_res.ndim != 4 or low_res.shape[1:3] != (config.low_res_size, config.low_res_size):
        raise TextimgError(
            f"the super-resolution model reads {config.low_res_size} px images, "
            f"got shape {tuple(low_res.shape)}"
        )
    tensor = torch.from_numpy(np.ascontiguousarray(low_res)).permute(0, 3, 1, 2).float()
    tensor = tensor / 127.5 - 1
    if tensor.shape[1] == 1 and channels == 3:
        tensor = tensor.repeat(1, 3, 1, 1)  # as the reader feeds grayscale data to RGB models
    elif tensor.shape[1] == 3 and channels == 1:
        luma = torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]  # PIL's "L"
        tensor = (tensor * luma).sum(dim=1, keepdim=True)
    tensor = tensor.to(device)
    if not config.noise_conditioning:
        return {"low_res": tensor}
    steps = torch.full((len(tensor),), min(config.sample_noise_step, diffusion.num_steps - 1))
    return augment_low_res(tensor, steps, diffusion, generator)


def preview_inputs(config: SuperResConfig, batch: dict, count: int) -> tuple[list[str], np.ndarray]:
    """Texts and uint8 low-res images of a batch's first `count` samples, for sample grids."""
    low_res = downsample(batch["image"][:count], config.low_res_size, config.downsample)
    return list(batch["text"][:count]), to_uint8(low_res)


def check_cascade(base: RunConfig, super_resolution: RunConfig) -> None:
    """Fail before sampling when the two checkpoints cannot run as base -> super-resolution."""
    low = super_resolution.super_resolution.low_res_size
    if not low:
        raise TextimgError("the --sr checkpoint is not a super-resolution model")
    if base.super_resolution.low_res_size:
        raise TextimgError("the base checkpoint is itself a super-resolution model")
    if base.model.image_size != low:
        raise TextimgError(
            f"the base makes {base.model.image_size} px images but the super-resolution model "
            f"reads {low} px ones"
        )
