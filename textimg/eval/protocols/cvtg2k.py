"""CVTG-2K (TextCrafter, Du et al. 2025): Word Accuracy and NED over the target's words.

No official code: NJU-PCALab/TextCrafter ships generation scripts only (its README names the
metrics, its paper defines them, and no scorer is published). textimg follows the definition as
`metrics.cvtg_word_accuracy` and `metrics.cvtg_ned` state it: words lowercased and split on
whitespace; Word Accuracy is the share of target words among the OCR words; NED averages, over
target words, 1 - Lev / (max(len) + 1e-5) against the OCR word difflib ranks closest. Images
are averaged; an image whose target has no words adds nothing.

Transcript mapping: the OCR words are the transcript's whitespace-split words; the target words
those of the target's text (its regions joined by "\\n").
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from textimg.eval import metrics
from textimg.eval.protocols.base import BenchmarkPrompt, ItemScores, Protocol, Target, mean_of

QUOTED = re.compile(r"(?<![A-Za-z])'(.+?)'(?![A-Za-z])")
"""A text in CVTG-2K's prompts: single-quoted, quotes not inside a word ("Joe's" is no quote)."""


def score_item(target: Target, transcript: str) -> ItemScores:
    """Word Accuracy and NED of one image (both absent for a target without words)."""
    scores = {
        "word_acc": metrics.cvtg_word_accuracy(target.text, transcript),
        "ned": metrics.cvtg_ned(target.text, transcript),
    }
    return {name: value for name, value in scores.items() if value == value}


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    """Means over the images that have target words."""
    return {name: mean_of(items, name) for name in ("word_acc", "ned")}


def read_prompts(path: Path) -> list[BenchmarkPrompt]:
    """`CVTG/<n>.json` (n = number of regions): `data_list` rows of `index`, `prompt` and
    `sentence_list`; each sentence's quoted text is one region, the key is `index` (images are
    saved as `<n>/<index>.png`, so score one area file at a time)."""
    rows = json.loads(path.read_text(encoding="utf-8"))["data_list"]
    prompts = []
    for row in rows:
        regions = tuple(
            match for sentence in row["sentence_list"] for match in QUOTED.findall(sentence)
        )
        prompts.append(
            BenchmarkPrompt(
                key=str(row["index"]),
                prompt=row["prompt"],
                target=Target(text="\n".join(regions), regions=regions),
            )
        )
    return prompts


PROTOCOL = Protocol(
    name="cvtg2k",
    title="CVTG-2K (TextCrafter)",
    version="1",
    metrics=("word_acc", "ned"),
    score_item=score_item,
    aggregate=aggregate,
    official_code="no official code: definition from the paper/README (NJU-PCALab/TextCrafter)",
    official_engine="paddleocr==2.10.0",
    read_prompts=read_prompts,
    deviations=(
        "no official scorer exists; the fixture checks textimg against an independent "
        "implementation of the definition and a hand-checked worked example"
    ),
)
