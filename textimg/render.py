"""Drawing one synthetic sample: fitting text into the square and rendering it. No file I/O.

`fit_text` decides the final line breaks and font size so the whole text fits inside the margins
(re-break, then shrink, and only at the minimum size drop trailing words: never clip), and
`render_layout` draws a `Layout` into a grayscale image. Both are pure functions of their inputs,
which is what makes every sample reproducible from (seed, index) alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

SHRINK = 0.9
"""Each failed fit retries at 90% of the font size: few retries, sizes stay near the draw."""

_MEASURE = ImageDraw.Draw(Image.new("L", (1, 1)))


@lru_cache(maxsize=4096)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A Pillow font, cached per (file, size): opening a face costs more than drawing a line."""
    return ImageFont.truetype(path, size)


@dataclass(frozen=True)
class Layout:
    """Everything that decides how a sample looks; `render_layout(layout)` draws exactly this."""

    text: str
    font_path: str
    font_size: int
    line_spacing: int
    align: str
    x: int
    y: int
    background: int
    foreground: int
    image_size: int

    def text_box(self) -> tuple[int, int, int, int]:
        """The text's bounding box in image pixels (left, top, right, bottom)."""
        x0, y0, x1, y1 = measure(
            self.text, self.font_path, self.font_size, self.line_spacing, self.align
        )
        return (self.x + x0, self.y + y0, self.x + x1, self.y + y1)


def measure(
    text: str, font_path: str, font_size: int, spacing: int, align: str = "left"
) -> tuple[int, int, int, int]:
    """The box Pillow will ink for `text` drawn at the origin (it may start right of/below 0)."""
    font = load_font(font_path, font_size)
    box = _MEASURE.multiline_textbbox((0, 0), text, font=font, spacing=spacing, align=align)
    return tuple(int(v) for v in box)  # type: ignore[return-value]


def break_lines(paragraphs: list[list[str]], breaks: set[int]) -> list[str]:
    """Join words into lines, starting a new line before each word index in `breaks`.

    Paragraph boundaries (line breaks the source text already had) always stay line breaks.
    """
    lines: list[str] = []
    index = 0
    for words in paragraphs:
        current: list[str] = []
        for word in words:
            if current and index in breaks:
                lines.append(" ".join(current))
                current = []
            current.append(word)
            index += 1
        lines.append(" ".join(current))
    return lines


def wrap_to_width(
    paragraphs: list[list[str]], font_path: str, font_size: int, width: int
) -> list[str]:
    """Greedy word wrap of each paragraph to `width` pixels (a lone long word gets its own line)."""
    font = load_font(font_path, font_size)
    lines: list[str] = []
    for words in paragraphs:
        current = ""
        for word in words:
            candidate = f"{current} {word}" if current else word
            if current and font.getlength(candidate) > width:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    return lines


@dataclass(frozen=True)
class FittedText:
    """The outcome of fitting: final lines, font size, and whether words had to be dropped."""

    lines: list[str]
    font_size: int
    box: tuple[int, int, int, int]
    dropped_words: int


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
            wrap_to_width(paragraphs, font_path, size, area),
        ):
            if len(lines) > max_lines:
                continue
            box = measure("\n".join(lines), font_path, size, spacing, align)
            if box[2] - box[0] <= area and box[3] - box[1] <= area:
                return FittedText(lines, size, box, dropped)
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


def render_layout(layout: Layout) -> Image.Image:
    """Draw the layout: a flat background and antialiased text in one gray, as an `L` image."""
    image = Image.new("L", (layout.image_size, layout.image_size), layout.background)
    ImageDraw.Draw(image).multiline_text(
        (layout.x, layout.y),
        layout.text,
        font=load_font(layout.font_path, layout.font_size),
        fill=layout.foreground,
        spacing=layout.line_spacing,
        align=layout.align,
    )
    return image
