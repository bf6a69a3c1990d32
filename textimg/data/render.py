"""Drawing one synthetic sample: fitting text into the square and rendering it. No file I/O.

`fit_text` decides line breaks and font size so the whole text fits inside the margins (re-break,
then shrink, and only at the minimum size drop trailing words: never clip); `render_layout` draws a
`Layout` and returns the image with its exact ink box. Both are pure functions of their inputs,
which is what makes every sample reproducible from (seed, index) alone.

Speed comes from touching FreeType once per line: words are measured once per font at
`MEASURE_SIZE` (and cached: word use is Zipf-shaped; in fonts without kerning, composed exactly from
cached characters) and their boxes scaled to the chosen size, padded for hinting; the true ink box
is then read off the rendered mask. If hinting ever pushes ink past the image edge, the caller
shrinks and redraws, so the text is never clipped.
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


KERNING_PROBE = "AVATAR To Ta Te Ty Yo Wa We Va LT LV P. F, r. y, f) 'A \"Y 11 74"
"""Pairs nearly every kerned font adjusts: a font whose probe measures as the sum of its letters
does not kern (checked beside the absent 'kern' table, the only kerning BASIC layout applies)."""


@lru_cache(maxsize=200_000)
def word_metrics(path: str, word: str) -> tuple[float, Box]:
    """A word's advance and ink box (relative to its left/ascender point) at MEASURE_SIZE.

    Composed from its characters' metrics where that gives exactly what measuring the word gives
    (`_composed_metrics`): FreeType then works once per character of a font, not three times per
    new word, which made measuring a third of a short synth run.
    """
    composed = _composed_metrics(path, word) if _spaces_by_character(path) else None
    if composed is not None:
        return composed
    font = load_font(path, MEASURE_SIZE)
    return font.getlength(word), font.getbbox(word, anchor=ANCHOR)  # type: ignore[return-value]


@lru_cache(maxsize=65_536)
def _character_metrics(path: str, char: str) -> tuple[int, Box]:
    """One character's advance in 1/64 px (FreeType's unit, exact) and its ink box at ANCHOR."""
    font = load_font(path, MEASURE_SIZE)
    return round(font.getlength(char) * 64), font.getbbox(char, anchor=ANCHOR)  # type: ignore[return-value]


@lru_cache(maxsize=4096)
def _spaces_by_character(path: str) -> bool:
    """True when the font never moves a character for its neighbour (no kerning).

    Pillow's BASIC layout places each glyph at the sum of the advances before it, adjusted only
    by the legacy 'kern' table; without one, a word is its characters side by side.
    """
    from fontTools.ttLib import TTFont, TTLibError

    try:
        if "kern" in TTFont(path, fontNumber=0, lazy=True):
            return False
    except (TTLibError, OSError, ValueError):
        return False
    probe = round(load_font(path, MEASURE_SIZE).getlength(KERNING_PROBE) * 64)
    return probe == sum(_character_metrics(path, char)[0] for char in KERNING_PROBE)


def _composed_metrics(path: str, word: str) -> tuple[float, Box] | None:
    """A word's metrics from its characters', or None where they might differ from measuring it.

    Pillow's box of a run of glyphs is the union of each glyph's pixel box at its pen position,
    the pen line from 0 to the last advance, and the baseline; a one-character box already holds
    its own pen line and baseline, so shifting each character's box by its whole-pixel pen
    position and taking the union is exact while every advance is a non-negative whole pixel
    (hinted fonts; anything else is measured directly).
    """
    if not word:
        return None
    pen = 0
    placed = []
    for char in word:
        advance, box = _character_metrics(path, char)
        if advance < 0 or advance % 64:
            return None
        placed.append((pen // 64, box))
        pen += advance
    left = min(shift + box[0] for shift, box in placed)
    top = min(box[1] for _, box in placed)
    right = max(shift + box[2] for shift, box in placed)
    bottom = max(box[3] for _, box in placed)
    return pen / 64, (left, top, right, bottom)


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


@lru_cache(maxsize=16_384)
def _line_box(words: tuple[str, ...], path: str) -> tuple[float, float, float, float, float]:
    """(advance, x0, y0, x1, y1) of a line at MEASURE_SIZE, from its cached word metrics; cached
    because fitting tries the same lines at several sizes."""
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
    boxes = [_line_box(tuple(line), path) for line in lines]
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


LINEAR_DROPS = 8
"""Drops tried one at a time before bisecting: an ordinary text that overflows at the minimum
size loses a word or two, while a line of thousands of characters would need thousands of
re-measures, one per dropped character."""


def _after_drops(paragraphs: list[list[str]], dropped: int) -> list[list[str]]:
    """The text after `dropped` drops: trailing words first, then trailing characters of the one
    word left."""
    words = sum(len(p) for p in paragraphs)
    left = max(1, words - dropped)
    kept: list[list[str]] = []
    for paragraph in paragraphs:
        if left == 0:
            break
        kept.append(list(paragraph[:left]))
        left -= len(kept[-1])
    cut = dropped - (words - 1)
    if cut > 0:
        kept[0][0] = kept[0][0][:-cut]
    return kept


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
    trailing characters) until the rest fits. `dropped` counts what was cut: the fewest drops
    that fit, found one at a time for a few, then by bisection."""

    def fit(paragraphs: list[list[str]], size: int) -> FittedText | None:
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
        return None

    dropped = 0
    size = font_size
    while (fitted := fit(paragraphs, size)) is None and size > min_font_size:
        size = max(min_font_size, int(size * SHRINK))
    if fitted is not None:
        return fitted
    most = sum(len(p) for p in paragraphs) - 1 + len(paragraphs[0][0]) - 1
    for dropped in range(1, min(LINEAR_DROPS, most) + 1):
        if (fitted := fit(_after_drops(paragraphs, dropped), size)) is not None:
            return fitted
    low, high = LINEAR_DROPS + 1, most
    dropped = high
    if low > high or fit(_after_drops(paragraphs, high), size) is None:
        raise ValueError(f"one character does not fit in {area} px at {min_font_size} px")
    while low < high:
        dropped = (low + high) // 2
        if fit(_after_drops(paragraphs, dropped), size) is None:
            low = dropped + 1
        else:
            high = dropped
    dropped = low
    fitted = fit(_after_drops(paragraphs, dropped), size)
    assert fitted is not None
    return fitted


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
