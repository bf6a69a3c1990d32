"""Which texts of a user's corpus the fonts can draw, and which fonts draw any of them.

A sample draws a font first, then texts until one has a character that font draws; a corpus where
no text suits a font would redraw forever. Deciding this once, at set-up, turns that hang into a
list of the texts left out (and why) or one refusal, before any shard work.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from textimg.data.fonts import PRINTABLE, FontInfo
from textimg.errors import TextimgError, TextimgWarning
from textimg.files import write_text_atomic

REJECTS_NAME = "rejected-texts.jsonl"
"""The texts left out of a corpus, one JSON object a line, beside its shards."""
SHOWN = 3
"""Rejected texts named in a message; the rest are counted (and all are in the rejects file)."""
EXCERPT = 30


@lru_cache(maxsize=256)
def drawable_characters(charset: str) -> frozenset[str]:
    """The characters a font with `charset` writes: those it has among printable ASCII."""
    return frozenset(charset) & frozenset(PRINTABLE)


@dataclass(frozen=True)
class RejectedText:
    """A text no font draws a single character of: its line number and the characters at fault."""

    number: int
    text: str
    missing: str

    def describe(self) -> str:
        excerpt = self.text if len(self.text) <= EXCERPT else self.text[:EXCERPT] + "..."
        return f"line {self.number} {excerpt!r} (only {self.missing[:10]!r})"


@dataclass(frozen=True)
class DrawableCorpus:
    """The texts and fonts a corpus draws from, and the texts left out."""

    texts: tuple[str, ...]
    fonts: tuple[FontInfo, ...]
    rejected: tuple[RejectedText, ...]


def _visible(text: str) -> str:
    """The distinct characters of `text` that are not white space, in order of appearance."""
    return "".join(dict.fromkeys(c for c in text if not c.isspace()))


def _named(rejected: Sequence[RejectedText]) -> str:
    named = "; ".join(r.describe() for r in rejected[:SHOWN])
    return named + (f"; and {len(rejected) - SHOWN} more" if len(rejected) > SHOWN else "")


def drawable_corpus(
    numbered: Mapping[int, str], fonts: Sequence[FontInfo], source: str
) -> DrawableCorpus:
    """Leave out the texts no font draws any character of, and the fonts that draw none of the
    texts kept, each with one warning line; refuse a corpus with no drawable text at all.

    `numbered` maps a line number to its text; `source` names where the texts come from.
    """
    drawn = frozenset().union(*(drawable_characters(font.charset) for font in fonts))
    kept: list[str] = []
    rejected: list[RejectedText] = []
    for number, text in numbered.items():
        visible = _visible(text)
        if drawn.intersection(visible):
            kept.append(text)
        else:
            rejected.append(RejectedText(number, text, visible))
    why = "synth writes printable ASCII (letters, digits, punctuation)"
    if not kept:
        raise TextimgError(
            f"no line of {source} can be drawn: {why} and no font has any character of "
            f"{_named(rejected)}; give texts with such characters"
        )
    if rejected:
        warnings.warn(
            f"{len(rejected)} of {len(numbered)} lines of {source} are left out ({REJECTS_NAME} "
            f"in the output folder lists them): {why} and no font has any character of "
            f"{_named(rejected)}",
            TextimgWarning,
            stacklevel=2,
        )
    used = frozenset().union(*(_visible(text) for text in kept))
    usable = tuple(font for font in fonts if used & drawable_characters(font.charset))
    if len(usable) < len(fonts):
        idle = ", ".join(f"{f.family} {f.style}" for f in fonts if f not in usable)
        warnings.warn(
            f"{len(fonts) - len(usable)} fonts draw no character of {source} and are left out: "
            f"{idle}",
            TextimgWarning,
            stacklevel=2,
        )
    return DrawableCorpus(tuple(kept), usable, tuple(rejected))


def write_rejects(directory: Path, rejected: Sequence[RejectedText]) -> None:
    """List the texts left out in `directory`/`REJECTS_NAME` (nothing when none were)."""
    if rejected:
        rows = [
            json.dumps({"line": r.number, "text": r.text, "missing": r.missing}, ensure_ascii=False)
            for r in rejected
        ]
        write_text_atomic(directory / REJECTS_NAME, "\n".join(rows) + "\n")
