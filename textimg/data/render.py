"""Drawing one synthetic sample: fitting text into the square and rendering it. No file I/O.

`fit_text` decides line breaks and font size so the whole text fits inside the margins (re-break,
then shrink, and only at the minimum size drop trailing words: never clip); `render_layout` draws a
`Layout` and returns the image with its exact ink box. Both are pure functions of their inputs,
which is what makes every sample reproducible from (seed, index) alone.

Speed comes from touching FreeType once per line: words are measured once per font at
`MEASURE_SIZE` (and cached: word use is Zipf-shaped) and their boxes scaled to the chosen size,
padded for hinting; the true ink box is then read off the rendered mask. If hinting ever pushes ink
past the image edge, the caller shrinks and redraws, so the text is never clipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

SHRINK = 0.9
"""Each failed fit retries at 90% of the font size: few retries, sizes stay near the draw."""
MEASURE_SIZE = 64
"""Words are measured once per font at this size and scaled: glyph advances scale linearly."""
PAD = 0.05
"""Each side of the estimated box grows by 5% of the font size (at least 2 px) to absorb the
rounding of hinted advances, so an estimate that fits means ink that fits."""
ANCHOR = "la"
"""Lines are placed by their left/ascender point, so line i's top is exactly i pitches down."""

Box = tuple[int, int, int, int]


@lru_cache(maxsize=8192)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A Pillow font, cached per (file, size). BASIC layout (FreeType with kerning) is enough for
    the Latin text textimg writes and measures 2-7x faster than Raqm."""
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=200_000)
def word_metrics(path: str, word: str) -> tuple[float, Box]:
    """A word's advance and ink box (relative to its left/ascender point) at MEASURE_SIZE."""
    font = load_font(path, MEASURE_SIZE)
    return font.getlength(word), font.getbbox(word, anchor=ANCHOR)  # type: ignore[return-value]


@dataclass(frozen=True)
class Layout:
    """Everything that decides how a sample looks; `render_layout(layout)` draws exactly this."""

    lines: tuple[str, ...]
    origins: tuple[tuple[int, int], ...]
    font_path: str
    font_size: int
    background: int
    foreground: int
    image_size: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class FittedText:
    """Lines at a font size, with origins relative to the block and the block's padded box."""

    lines: list[list[str]]
    font_size: int
    origins: list[tuple[int, int]]
    box: Box
    dropped: int


def break_lines(paragraphs: list[list[str]], breaks: set[int]) -> list[list[str]]:
    """Group words into lines, starting a new line before each word index in `breaks`.

    Paragraph boundaries (line breaks the source text already had) always stay line breaks.
    """
    lines: list[list[str]] = []
    index = 0
    for words in paragraphs:
        current: list[str] = []
        for word in words:
            if current and index in breaks:
                lines.append(current)
                current = []
            current.append(word)
            index += 1
        lines.append(current)
    return lines


def wrap_to_width(
    paragraphs: list[list[str]], path: str, scale: float, limit: float
) -> list[list[str]]:
    """Greedy word wrap of each paragraph to `limit` px (a lone long word gets its own line)."""
    space = word_metrics(path, " ")[0] * scale
    lines: list[list[str]] = []
    for words in paragraphs:
        current: list[str] = []
        length = 0.0
        for word in words:
            width = word_metrics(path, word)[0] * scale
            extra = width + (space if current else 0.0)
            if current and length + extra > limit:
                lines.append(current)
                current, length = [word], width
            else:
                current.append(word)
                length += extra
        lines.append(current)
    return lines


def _line_box(words: list[str], path: str) -> tuple[float, float, float, float, float]:
    """(advance, x0, y0, x1, y1) of a line at MEASURE_SIZE, from its cached word metrics."""
    space = word_metrics(path, " ")[0]
    pen, x0, y0, x1, y1 = 0.0, float("inf"), float("inf"), float("-inf"), float("-inf")
    for word in words:
        advance, (bx0, by0, bx1, by1) = word_metrics(path, word)
        x0, y0 = min(x0, pen + bx0), min(y0, by0)
        x1, y1 = max(x1, pen + bx1), max(y1, by1)
        pen += advance + space
    return pen - space, x0, y0, x1, y1


def place_lines(
    lines: list[list[str]], path: str, size: int, spacing: int, align: str
) -> tuple[list[tuple[int, int]], Box]:
    """Origins of each line (widest line at x=0, first line at y=0) and the padded block box."""
    scale = size / MEASURE_SIZE
    ascent, descent = load_font(path, MEASURE_SIZE).getmetrics()
    pitch = (ascent + descent) * scale + spacing
    boxes = [_line_box(line, path) for line in lines]
    widest = max(b[0] for b in boxes)
    shift = {"left": 0.0, "center": 0.5, "right": 1.0}[align]
    pad = max(2.0, PAD * size)
    origins, edges = [], []
    for i, (advance, x0, y0, x1, y1) in enumerate(boxes):
        x, y = round((widest - advance) * shift * scale), round(i * pitch)
        origins.append((x, y))
        edges.append((x + x0 * scale, y + y0 * scale, x + x1 * scale, y + y1 * scale))
    box = (
        int(min(e[0] for e in edges) - pad),
        int(min(e[1] for e in edges) - pad),
        int(max(e[2] for e in edges) + pad) + 1,
        int(max(e[3] for e in edges) + pad) + 1,
    )
    return origins, box


def fit_text(
    paragraphs: list[list[str]],
    breaks: set[int],
    font_path: str,
    font_size: int,
    spacing_ratio: float,
    align: str,
    area: int,
    min_font_size: int,
    max_lines: int,
) -> FittedText:
    """Fit the words into an `area` x `area` square: the sampled breaks first, then word wrap,
    then smaller sizes; at the minimum size, drop trailing words (or, for one overlong word, its
    trailing characters) until the rest fits. `dropped` counts what was cut."""
    paragraphs = [list(p) for p in paragraphs]
    dropped = 0
    size = font_size
    while True:
        spacing = round(size * spacing_ratio)
        for lines in (
            break_lines(paragraphs, breaks),
            wrap_to_width(paragraphs, font_path, size / MEASURE_SIZE, area * 0.95),
        ):
            if len(lines) > max_lines:
                continue
            origins, box = place_lines(lines, font_path, size, spacing, align)
            if box[2] - box[0] <= area and box[3] - box[1] <= area:
                return FittedText(lines, size, origins, box, dropped)
        if size > min_font_size:
            size = max(min_font_size, int(size * SHRINK))
            continue
        dropped += 1
        if sum(len(p) for p in paragraphs) > 1:
            paragraphs[-1].pop()
            if not paragraphs[-1]:
                paragraphs.pop()
        elif len(paragraphs[0][0]) > 1:
            paragraphs[0][0] = paragraphs[0][0][:-1]
        else:
            raise ValueError(f"one character does not fit in {area} px at {min_font_size} px")


def render_layout(layout: Layout) -> tuple[Image.Image, Box | None]:
    """Draw the layout (a flat background, antialiased text in one gray) as an `L` image, and
    return it with the exact ink box, read off the text mask (None if nothing was inked)."""
    size = (layout.image_size, layout.image_size)
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    font = load_font(layout.font_path, layout.font_size)
    for line, origin in zip(layout.lines, layout.origins, strict=True):
        draw.text(origin, line, font=font, fill=255, anchor=ANCHOR)
    image = Image.new("L", size, layout.background)
    image.paste(layout.foreground, (0, 0, *size), mask)
    return image, mask.getbbox()
