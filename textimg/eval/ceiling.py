"""`score --ceiling`: the reader's own error on a protocol, from clean renderings of each target.

A benchmark score mixes the model's error with the reader's. Each prompt's target text is rendered
black on white with textimg's fonts (`data.render`, the renderer of the corpus and of the learning
chain's clean-rendering ceiling: one face per prompt, in turn through the default font list), read
by the same engine and scored through the same protocol, so what the ceiling misses the reader
misses on perfect images. Both sides are broken down by the target's length in characters, words
and lines, where readers and benchmarks fail differently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from textimg.data.fonts import PRINTABLE, FontInfo, resolve_fonts
from textimg.data.render import Layout, fit_text, render_layout
from textimg.errors import TextimgError
from textimg.eval.ocr import OcrEngine
from textimg.eval.protocol_scoring import finite
from textimg.eval.protocols import BenchmarkPrompt, Protocol, Target

CEILING_SIZE = 512
"""Side of a clean rendering: large enough that a long target stays legible at the minimum size."""
MIN_FONT_PX, MAX_FONT_PX = 14, 96
MAX_LINES = 24
MARGIN = 16

LENGTH_BUCKETS: dict[str, tuple[tuple[str, int], ...]] = {
    "characters": (("0", 0), ("1-10", 10), ("11-30", 30), ("31-100", 100), ("101+", 10**9)),
    "words": (("0", 0), ("1", 1), ("2-3", 3), ("4-10", 10), ("11+", 10**9)),
    "lines": (("0", 0), ("1", 1), ("2", 2), ("3-5", 5), ("6+", 10**9)),
}
"""Per length measure, (bucket name, largest length in it), in order."""


def target_lengths(target: Target) -> dict[str, int]:
    """A target's length in characters (line breaks not counted), words and non-empty lines."""
    text = target.text
    lines = [line for line in text.split("\n") if line.strip()]
    return {
        "characters": len(text.replace("\n", "")),
        "words": len(text.split()),
        "lines": len(lines),
    }


def length_bucket(measure: str, length: int) -> str:
    """The bucket of `LENGTH_BUCKETS[measure]` holding `length`."""
    return next(name for name, most in LENGTH_BUCKETS[measure] if length <= most)


def ceiling_fonts() -> list[FontInfo]:
    """textimg's default fonts on this machine, in list order."""
    fonts = list(resolve_fonts().valid)
    if not fonts:
        raise TextimgError("--ceiling needs textimg's fonts: none is installed (textimg fonts)")
    return fonts


def render_target(text: str, font: FontInfo) -> Image.Image:
    """`text` black on white, its line breaks kept and long lines wrapped, centred; characters
    the font does not draw are left out (they count against the ceiling, as a reader would)."""
    drawable = set(font.charset) & set(PRINTABLE)
    kept_lines = ("".join(c for c in line if c in drawable) for line in text.split("\n"))
    paragraphs = [words for line in kept_lines if (words := line.split())]
    if not paragraphs:
        return Image.new("RGB", (CEILING_SIZE, CEILING_SIZE), "white")
    area = CEILING_SIZE - 2 * MARGIN
    fitted = fit_text(
        paragraphs, set(), font.path, MAX_FONT_PX, 0.2, "center", area, MIN_FONT_PX, MAX_LINES
    )
    x0, y0, x1, y1 = fitted.box
    dx, dy = MARGIN - x0 + (area - (x1 - x0)) // 2, MARGIN - y0 + (area - (y1 - y0)) // 2
    layout = Layout(
        lines=tuple(" ".join(words) for words in fitted.lines),
        origins=tuple((x + dx, y + dy) for x, y in fitted.origins),
        font_path=font.path,
        font_size=fitted.font_size,
        background=255,
        foreground=0,
        image_size=CEILING_SIZE,
    )
    return render_layout(layout)[0].convert("RGB")


def read_ceiling(
    prompts: Sequence[BenchmarkPrompt],
    protocol: Protocol,
    engine: OcrEngine,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 16,
) -> list[dict[str, Any]]:
    """Per prompt: its key, lengths, font and the protocol's scores of its clean rendering."""
    fonts = ceiling_fonts()
    rows: list[dict[str, Any]] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        faces = [fonts[(start + i) % len(fonts)] for i in range(len(batch))]
        images = [render_target(p.target.text, f) for p, f in zip(batch, faces, strict=True)]
        for prompt, face, transcript in zip(batch, faces, engine.read(images), strict=True):
            scores = protocol.score_item(prompt.target, transcript)
            lengths = target_lengths(prompt.target)
            rows.append({"key": prompt.key, "font": face.file, "transcript": transcript,
                         "lengths": lengths, "scores": scores})  # fmt: skip
        if progress is not None:
            progress(len(rows))
    return rows


def by_length(
    image_items: Sequence[tuple[Target, dict[str, float]]],
    ceiling_rows: Sequence[dict[str, Any]],
    protocol: Protocol,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per length measure and bucket: how many images and prompts, and the protocol's aggregate
    of the images and of the clean renderings in it."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for measure, buckets in LENGTH_BUCKETS.items():
        table[measure] = {}
        for bucket, _ in buckets:
            mine = [
                scores
                for target, scores in image_items
                if length_bucket(measure, target_lengths(target)[measure]) == bucket
            ]
            clean = [
                row["scores"]
                for row in ceiling_rows
                if length_bucket(measure, row["lengths"][measure]) == bucket
            ]
            if not mine and not clean:
                continue
            table[measure][bucket] = {
                "images": len(mine),
                "prompts": len(clean),
                "score": _aggregate(protocol, mine),
                "ceiling": _aggregate(protocol, clean),
            }
    return table


def _aggregate(protocol: Protocol, items: Sequence[dict[str, float]]) -> dict[str, float | None]:
    """The protocol's headline metrics over `items`, null where there is none."""
    if not items:
        return {name: None for name in protocol.metrics}
    aggregate = protocol.aggregate(list(items))
    return {name: finite(aggregate[name]) for name in protocol.metrics if name in aggregate}
