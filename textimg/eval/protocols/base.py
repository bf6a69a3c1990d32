"""What a scoring protocol is: one benchmark's own way of turning (target, transcript) pairs into
its published numbers.

Benchmarks disagree on everything that moves a score: the unit (a line, a word bag, a quoted
phrase, a region), case and punctuation, how per-item values are averaged (MARIO-Eval's F is the
harmonic mean of the averaged precision and recall, not the mean of per-item F), and their
prompt files' formats and image names. A `Protocol` holds all of it for one benchmark, so
`textimg score --protocol NAME` reproduces that benchmark's own scoring code from a transcript,
whatever read the image.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ItemScores = dict[str, float]


@dataclass(frozen=True)
class Target:
    """What one image should show, as its benchmark states it.

    `text` is the whole intended text (lines joined by "\\n"); `regions` the benchmark's separate
    texts (one per text box, line or quoted phrase), in the benchmark's order; empty means the
    whole text is one region.
    """

    text: str
    regions: tuple[str, ...] = ()

    @property
    def parts(self) -> tuple[str, ...]:
        """The regions, or the whole text as one."""
        return self.regions or (self.text,)


@dataclass(frozen=True)
class BenchmarkPrompt:
    """One row of a benchmark's prompt file: its key (what image names start with), the prompt
    a model was given, and the target text the images are scored against."""

    key: str
    prompt: str
    target: Target


SAMPLE_SUFFIX = re.compile(r"^(?P<key>.+?)(?:[_-](?P<sample>\d+))?$")


def key_and_sample(stem: str) -> tuple[str, int]:
    """The common generation-script naming `KEY.png`, `KEY_3.png` or `KEY-3.png`: (key, sample)."""
    match = SAMPLE_SUFFIX.match(stem)
    assert match is not None  # the pattern matches any non-empty stem
    return match["key"], int(match["sample"] or 0)


@dataclass(frozen=True)
class Protocol:
    """One benchmark's scoring: per-item metrics, the benchmark's own aggregate, its files."""

    name: str  # what `--protocol` takes
    title: str  # the benchmark's own name
    version: str  # textimg's version of this protocol: bumped whenever its numbers could change
    metrics: tuple[str, ...]  # aggregate names, in report order
    score_item: Callable[[Target, str], ItemScores]
    aggregate: Callable[[Sequence[ItemScores]], dict[str, float]]
    official_code: str  # "owner/repo@commit path" the parity fixture was produced with
    official_engine: str  # what the benchmark reads images with
    lower_is_better: frozenset[str] = frozenset()
    read_prompts: Callable[[Path], list[BenchmarkPrompt]] | None = None  # its prompt file
    image_key: Callable[[str], tuple[str, int]] = key_and_sample  # file stem -> (key, sample)
    deviations: str = ""  # where textimg knowingly differs from the official code, and why
    extra: dict[str, str] = field(default_factory=dict)  # corrected variants: name -> meaning


def mean_of(items: Sequence[ItemScores], metric: str) -> float:
    """The plain mean of one per-item metric over items that have it (NaN-free), 0.0 for none:
    most benchmarks' aggregate."""
    values = [item[metric] for item in items if metric in item and item[metric] == item[metric]]
    return sum(values) / len(values) if values else 0.0
