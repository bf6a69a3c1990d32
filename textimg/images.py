"""Images for people to look at: tensors to uint8, grids, PNG files, captioned contact sheets, and
the bit-depth conversion every reader of images shares."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    import torch

CAPTION_LINES = 3
CAPTION_FONT_PX = 11


def _caption_font() -> ImageFont.FreeTypeFont:
    from matplotlib import get_data_path

    return ImageFont.truetype(f"{get_data_path()}/fonts/ttf/DejaVuSans.ttf", CAPTION_FONT_PX)


def _caption(text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    """The first lines of `text`, each cut to fit `width` px, `\\n` shown as line breaks."""
    lines = text.split("\n") or [""]
    shown = []
    for line in lines[:CAPTION_LINES]:
        while line and font.getlength(line) > width:
            line = line[:-2] + "…"
        shown.append(line)
    if len(lines) > CAPTION_LINES:
        shown[-1] += " …"
    return "\n".join(shown)


def contact_sheet(
    items: Sequence[tuple[Image.Image, str]], columns: int = 8, cell: int = 128
) -> Image.Image:
    """Lay out (image, text) pairs in a grid, each image scaled to `cell` px with its text below."""
    font = _caption_font()
    caption_height = CAPTION_LINES * (CAPTION_FONT_PX + 3) + 4
    columns = max(1, min(columns, len(items)))
    rows = max(1, -(-len(items) // columns))
    sheet = Image.new("RGB", (columns * (cell + 4) + 4, rows * (cell + caption_height + 4) + 4))
    sheet.paste((255, 255, 255), (0, 0, *sheet.size))
    draw = ImageDraw.Draw(sheet)
    for i, (image, text) in enumerate(items):
        x = 4 + (i % columns) * (cell + 4)
        y = 4 + (i // columns) * (cell + caption_height + 4)
        thumb = image.convert("RGB")
        thumb.thumbnail((cell, cell), Image.LANCZOS)
        sheet.paste(thumb, (x + (cell - thumb.width) // 2, y + (cell - thumb.height) // 2))
        draw.multiline_text(
            (x, y + cell + 2), _caption(text, font, cell), font=font, fill=(0, 0, 0), spacing=2
        )
    return sheet


WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
"""Pillow modes with more than 8 bits a pixel: converting them straight to L or RGB clips every
value above 255 to white, so a 16-bit scan reads as a blank page."""


def to_eight_bit(image: Image.Image) -> Image.Image:
    """`image` with 8 bits a channel: 16-bit and 32-bit grayscale scaled down to L by the range its
    mode holds (0-65535; float images 0-1 when they stay within it, else 0-255), any other mode as
    it is. Every reader calls this before `convert`, so every mode Pillow opens keeps its tones."""
    if image.mode not in WIDE_MODES:
        return image
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        top = 1.0 if values.size and np.nanmax(values) <= 1.0 else 255.0
    else:
        top = 65535.0
    scaled = np.nan_to_num(values / top * 255.0, nan=0.0).clip(0, 255).round()
    return Image.fromarray(scaled.astype(np.uint8))


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] to (N, H, W, C) uint8."""
    import torch

    scaled = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


def image_grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Tile (N, H, W, C) images into one (rows*H, columns*W, C) image, row by row."""
    count, height, width, channels = images.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    grid = np.zeros((rows * height, columns * width, channels), dtype=images.dtype)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return grid


def save_image(image: np.ndarray, path: Path) -> None:
    """Write one (H, W, C) uint8 image as PNG; one channel is saved as grayscale."""
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
