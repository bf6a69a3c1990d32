"""Drawing one synthetic sample: fitting text into the square and rendering it. No file I/O.

`fit_text` decides the final line breaks and font size so the whole text fits inside the margins
(re-break, then shrink, and only at the minimum size drop trailing words: never clip), and
`render_layout` draws a `Layout` into a grayscale image. Both are pure functions of their inputs,
which is what makes every sample reproducible from (seed, index) alone.

Fitting measures words once at the sampled size and scales those widths for smaller sizes (glyph
advances scale linearly with size); only the chosen size is measured exactly, line by line. That
keeps layout to a handful of FreeType calls per image, the difference between ~150 and ~800
images/s per core.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

SHRINK = 0.9
"""Each failed fit retries at 90% of the font size: few retries, sizes stay near the draw."""
MEASURE_SIZE = 64
"""Words are measured once per font at this size and scaled: one warm face per font, not one cold
face per (font, size) pair, whose first glyph loads would dominate the cost."""
ANCHOR = "la"
"""Lines are placed by their left/ascender point, so line i's top is exactly i line-heights down."""

Box = tuple[int, int, int, int]


@lru_cache(maxsize=8192)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A Pillow font, cached per (file, size). BASIC layout (FreeType with kerning) is enough for
    the Latin text textimg writes and measures 2-7x faster than Raqm."""
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=200_000)
def word_width(path: str, word: str) -> float:
    """A word's advance at MEASURE_SIZE. Cached: word use is Zipf-shaped, so most words repeat."""
    return load_font(path, MEASURE_SIZE).getlength(word)


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

    def text_box(self) -> Box:
        """The union of the lines' ink boxes, in image pixels (left, top, right, bottom)."""
        return block_box(self.lines, self.origins, load_font(self.font_path, self.font_size))


def block_box(lines, origins, font: ImageFont.FreeTypeFont) -> Box:
    """Union of each line's box (`font.getbbox`) placed at its origin."""
    boxes = []
    for line, (x, y) in zip(lines, origins, strict=True):
        x0, y0, x1, y1 = font.getbbox(line, anchor=ANCHOR)
        boxes.append((x + x0, y + y0, x + x1, y + y1))
    return (
        int(min(b[0] for b in boxes)),
        int(min(b[1] for b in boxes)),
        int(max(b[2] for b in boxes)),
        int(max(b[3] for b in boxes)),
    )


def line_origins(
    lines: list[str], font: ImageFont.FreeTypeFont, spacing: int, align: str
) -> list[tuple[int, int]]:
    """Origins of each line for a block whose widest line starts at x=0 and first line at y=0."""
    ascent, descent = font.getmetrics()
    widths = [font.getlength(line) for line in lines]
    widest = max(widths)
    shift = {"left": 0.0, "center": 0.5, "right": 1.0}[align]
    return [
        (round((widest - width) * shift), i * (ascent + descent + spacing))
        for i, width in enumerate(widths)
    ]


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
    paragraphs: list[list[str]], widths: dict[str, float], space: float, limit: float
):
    """Greedy word wrap of each paragraph to `limit` (a lone long word gets its own line)."""
    lines: list[list[str]] = []
    for words in paragraphs:
        current: list[str] = []
        length = 0.0
        for word in words:
            extra = widths[word] + (space if current else 0.0)
            if current and length + extra > limit:
                lines.append(current)
                current, length = [word], widths[word]
            else:
                current.append(word)
                length += extra
        lines.append(current)
    return lines


@dataclass(frozen=True)
class FittedText:
    """The outcome of fitting: final lines and their origins, font size, box, what was cut."""

    lines: list[str]
    origins: list[tuple[int, int]]
    font_size: int
    box: Box
    dropped: int


def _estimate_fits(lines, widths, space, line_height, spacing, area) -> bool:
    widest = max(sum(widths[w] for w in line) + space * (len(line) - 1) for line in lines)
    height = len(lines) * line_height + (len(lines) - 1) * spacing
    return widest <= area and height <= area


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
    base = load_font(font_path, MEASURE_SIZE)
    ascent, descent = base.getmetrics()
    widths = {w: word_width(font_path, w) for p in paragraphs for w in p}
    space = word_width(font_path, " ")
    dropped = 0
    size = font_size
    while True:
        scale = size / MEASURE_SIZE
        scaled = {w: v * scale for w, v in widths.items()}
        spacing = round(size * spacing_ratio)
        for grouped in (
            break_lines(paragraphs, breaks),
            wrap_to_width(paragraphs, scaled, space * scale, area),
        ):
            if len(grouped) > max_lines or not _estimate_fits(
                grouped, scaled, space * scale, (ascent + descent) * scale, spacing, area
            ):
                continue
            lines = [" ".join(words) for words in grouped]
            font = load_font(font_path, size)
            origins = line_origins(lines, font, spacing, align)
            box = block_box(lines, origins, font)
            if box[2] - box[0] <= area and box[3] - box[1] <= area:
                return FittedText(lines, origins, size, box, dropped)
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
            widths[paragraphs[0][0]] = word_width(font_path, paragraphs[0][0])
        else:
            raise ValueError(f"one character does not fit in {area} px at {min_font_size} px")


def render_layout(layout: Layout) -> Image.Image:
    """Draw the layout: a flat background and antialiased text in one gray, as an `L` image."""
    image = Image.new("L", (layout.image_size, layout.image_size), layout.background)
    draw = ImageDraw.Draw(image)
    font = load_font(layout.font_path, layout.font_size)
    for line, origin in zip(layout.lines, layout.origins, strict=True):
        draw.text(origin, line, font=font, fill=layout.foreground, anchor=ANCHOR)
    return image
