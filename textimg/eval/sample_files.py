"""The PNG samples `eval` writes: each carries what made it, so a restart reuses only its own.

Every sample is a function of (checkpoint, prompt, k, sampling settings); that description goes
into a PNG text chunk, and a later run keeps a PNG only if its chunk matches exactly, so a changed
setting or checkpoint never scores a stale image.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, PngImagePlugin

from textimg.files import write_atomic

if TYPE_CHECKING:
    from textimg.eval.evaluate import SamplingSettings

METADATA_KEY = "textimg-sample"
"""PNG text chunk holding what generated the image; a restart keeps the PNG only if it matches."""


def sample_metadata(checkpoint: str, prompt: str, k: int, sampling: SamplingSettings) -> str:
    """The text chunk of sample `k` of `prompt` from the weights `checkpoint` identifies."""
    return json.dumps(
        {"checkpoint": checkpoint, "prompt": prompt, "k": k, **dataclasses.asdict(sampling)},
        sort_keys=True,
        ensure_ascii=False,
    )


def reusable_sample(path: Path, metadata: str) -> Image.Image | None:
    """The finished sample at `path` if its embedded metadata matches, else None."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.text.get(METADATA_KEY) == metadata:
                return image.convert("RGB")
    except (OSError, ValueError, SyntaxError):  # absent, half-written or foreign file
        pass
    return None


def save_sample(array: np.ndarray, path: Path, metadata: str) -> Image.Image:
    """Write one sample as PNG with its metadata (temp name + rename, so a kill leaves none)."""
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, metadata)
    write_atomic(path, lambda temporary: image.save(temporary, format="PNG", pnginfo=info))
    return image.convert("RGB")
