"""The cascade's second stage as one object: a super-resolution checkpoint, loaded once, that
upsamples a base model's images.

`sample --sr` and `eval --sr` both upsample through it, so the same checkpoint, steps, guidance and
seed give the same large images from either command. It lives beside `textimg.super_resolution`
rather than in it because that module stays free of models and files (`sampling` imports it),
while this one loads a checkpoint and calls the sampler.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from textimg.errors import TextimgError

if TYPE_CHECKING:
    import torch


class Upsampler:
    """A super-resolution checkpoint's EMA weights with the settings it upsamples with."""

    def __init__(
        self,
        checkpoint: Path,
        device: str | torch.device,
        steps: int,
        guidance: float,
        sampler: str,
    ) -> None:
        from textimg.checkpoint import load_checkpoint

        self.model, self.diffusion, config = load_checkpoint(checkpoint, device=device)
        self.mode = "L" if config.model.image_channels == 1 else "RGB"
        self.steps, self.guidance, self.sampler = steps, guidance, sampler

    def arrays(
        self, low_res: np.ndarray, prompts: Sequence[str], seed: int | Sequence[int]
    ) -> np.ndarray:
        """uint8 (N, s, s, C) low-res images and their N prompts to uint8 (N, S, S, C);
        `seed` as `sampling.sample` takes it (one, or one per contiguous group of prompts)."""
        from textimg.sampling import sample

        return sample(
            self.model, self.diffusion, list(prompts), steps=self.steps, guidance=self.guidance,
            seed=seed, sampler=self.sampler, low_res=low_res,
        )  # fmt: skip

    def images(self, images: Sequence[Image.Image], prompt: str, seed: int) -> list[Image.Image]:
        """Images of one prompt, upsampled; each is first converted to the model's channels."""
        arrays = np.stack([np.asarray(image.convert(self.mode)) for image in images])
        if arrays.ndim == 3:
            arrays = arrays[..., None]
        upsampled = self.arrays(arrays, [prompt] * len(arrays), seed)
        return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in upsampled]


def check_cascade_checkpoints(upsampler: Path | None, checkpoints: Sequence[Path]) -> None:
    """Fail before any sampling when the `upsampler` checkpoint (none: nothing to check) cannot
    upsample these base checkpoints' images; the error names both files."""
    if upsampler is None:
        return
    from textimg.checkpoint import read_checkpoint_config
    from textimg.super_resolution import check_cascade

    config = read_checkpoint_config(upsampler)
    for path in checkpoints:
        try:
            check_cascade(read_checkpoint_config(path), config)
        except TextimgError as error:
            raise TextimgError(f"--sr {upsampler} with {path}: {error}") from None
