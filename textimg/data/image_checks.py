"""What `textimg pack` does to one image file: verify it (read, hash, fully decode, detect the
format from the bytes), many at once in worker threads, and shrink it when `--max-size` asks.

Threads, not processes: nearly all the work (Pillow's decoders, sha256, reading files) runs in C
with the GIL released, so two threads verify 1.8x as fast as one (`benchmarks/pack.py`), and they
start at once, where each spawned process first paid ~0.1-0.2 s to start an interpreter and
import the main module (a sixth of a 400-image run on 2 cores), and nothing is pickled.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageSequence, UnidentifiedImageError

from textimg.images import to_eight_bit

FORMAT_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
"""Pillow format -> shard member extension. MPO is the multi-picture JPEG many phones write."""


@dataclass(frozen=True)
class ImageCheck:
    """What verifying one image file found; `problem` is (reason, detail) when it is unusable."""

    sha256: str = ""
    size: int = 0
    extension: str = ""
    width: int = 0
    height: int = 0
    mode: str = ""
    problem: tuple[str, str] | None = None


def check_image(path: str) -> ImageCheck:
    """Read, hash and fully decode one image (every frame), detecting its format from the bytes.

    Any exception from a decoder means the image is unusable, whatever its type, so all are caught.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return ImageCheck(problem=("missing_file", error.strerror or str(error)))
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, width, height, mode = image.format, image.width, image.height, image.mode
            for frame in ImageSequence.Iterator(image):
                frame.load()
    except UnidentifiedImageError:  # its message holds a memory address: not reproducible
        return ImageCheck(digest, len(data), problem=("corrupt_image", "not an image Pillow reads"))
    except Exception as error:
        return ImageCheck(digest, len(data), problem=("corrupt_image", f"{error}"))
    extension = FORMAT_EXTENSIONS.get(image_format or "")
    if extension is None:
        return ImageCheck(digest, len(data), problem=("unsupported_format", f"{image_format}"))
    return ImageCheck(digest, len(data), extension, width, height, mode)


def verify_images(
    paths: Sequence[str], workers: int, progress: Callable[[int, int], None] | None = None
) -> list[ImageCheck]:
    """`check_image` for every path on `workers` threads, in input order (so nothing downstream
    depends on the worker count); `progress(done, total)` after each.

    Ctrl-C or an error cancels the images not yet started, so the run stops within one image
    per worker instead of verifying every queued one first.
    """
    report = progress or (lambda done, total: None)
    checks: list[ImageCheck] = []
    executor = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        results = executor.map(check_image, paths) if executor else map(check_image, paths)
        for check in results:
            checks.append(check)
            report(len(checks), len(paths))
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    return checks


# ---------------------------------------------------------------------------------------------
# Resizing


REENCODE_EXTENSION = {"jpg": "jpg", "png": "png", "webp": "webp", "gif": "png"}
"""A resized image keeps its format, except GIF: only its first frame is kept, as PNG."""

_PILLOW_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"jpg": {"quality": 95}, "webp": {"quality": 95}}
_KEPT_MODES = {
    "jpg": ("L", "RGB", "CMYK"),
    "png": ("L", "LA", "RGB", "RGBA"),
    "webp": ("RGB", "RGBA"),
}


def resized_size(width: int, height: int, max_size: int | None) -> tuple[int, int] | None:
    """The size an image is shrunk to so its longer side is `max_size`, or None if it fits."""
    if max_size is None or max(width, height) <= max_size:
        return None
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def reencode_mode(mode: str, extension: str) -> str:
    """The mode a resized image is saved in: its own where the format can hold it, else the
    nearest one that keeps any alpha (palettes become RGBA so resampling can blend)."""
    if mode in _KEPT_MODES[extension]:
        return mode
    alpha = "A" in mode or mode == "P"
    return "RGBA" if alpha and extension != "jpg" else "RGB"


def reencode(data: bytes, size: tuple[int, int], extension: str) -> bytes:
    """The image `data` shrunk to `size` with Lanczos and saved as `extension`."""
    with Image.open(io.BytesIO(data)) as image:
        image = to_eight_bit(image)  # a 16-bit scan converted straight would be all white
        image = image.convert(reencode_mode(image.mode, extension))
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, _PILLOW_FORMAT[extension], **_SAVE_OPTIONS.get(extension, {}))
    return buffer.getvalue()
