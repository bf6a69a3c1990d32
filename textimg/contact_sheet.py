"""Contact sheets: a grid of images with their texts under them, for people to look at."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from textimg.shards import image_member, iter_samples

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


def shard_items(sources: Iterable[Path | str], limit: int) -> list[tuple[Image.Image, str]]:
    """The first `limit` (image, transcript) pairs of any textimg shards (synthetic or packed)."""
    items = []
    for _key, members in iter_samples(sources):
        found = image_member(members)
        if found is None:
            continue
        image = Image.open(io.BytesIO(found[1]))
        image.load()
        items.append((image, members.get("txt", b"").decode("utf-8", errors="replace")))
        if len(items) >= limit:
            break
    return items
