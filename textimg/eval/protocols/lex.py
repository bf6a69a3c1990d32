"""LeX-Bench's text scores (LeX-Art `evaluation/cal_pned_and_recall.py`): PNED, a Hungarian-matched
sum of normalized edit distances (lower is better, not bounded by 1), and Recall, the share of
target words greedily matched by a read word within NED 0.3.

The official script takes PaddleOCR's JSON (one `[box, [text, confidence]]` per detected line);
a transcript maps onto it line for line: each non-empty "\\n"-separated line is one detection's
text, kept verbatim, and no line at all is LeX-Art's `[""]`. Both sides are lowercased; each
read line is split on single spaces (`str.split(" ")`, so doubled spaces give empty words, as
the official code does), while the target's texts (LeX-Bench's `text` list, here the regions)
stay whole. Per-image values are averaged plainly.

The official Recall divides by the number of target texts and so fails on an image without
target text; textimg gives NaN there, which the mean skips.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein
from scipy.optimize import linear_sum_assignment

from textimg.eval.protocols.base import BenchmarkPrompt, ItemScores, Protocol, Target, mean_of

RECALL_THRESHOLD = 0.3
"""LeX-Art counts a target text as recalled by a read word within this normalized distance."""


def normalized_edit_distance(a: str, b: str) -> float:
    """Levenshtein distance over the longer length, 0.0 for two empty strings (LeX-Art's own)."""
    return Levenshtein.normalized_distance(a, b)


def read_words(transcript: str) -> list[str]:
    """The transcript as LeX-Art sees its OCR JSON: lowercased detections split on " "."""
    lines = [line.lower() for line in transcript.split("\n") if line] or [""]
    return [word for line in lines for word in line.split(" ")]


def pned(targets: list[str], words: list[str]) -> float:
    """Optimal-assignment sum of NEDs plus one per unmatched item on either side."""
    cost = np.array([[normalized_edit_distance(w, t) for t in targets] for w in words])
    cost = cost.reshape(len(words), len(targets))
    rows, columns = linear_sum_assignment(cost)
    return float(cost[rows, columns].sum()) + abs(len(words) - len(targets))


def recall(targets: list[str], words: list[str]) -> float:
    """Each target in order takes the first unused word within the threshold (LeX-Art's greedy)."""
    if not targets:
        return math.nan
    used: set[int] = set()
    for target in targets:
        for index, word in enumerate(words):
            if index not in used and normalized_edit_distance(target, word) <= RECALL_THRESHOLD:
                used.add(index)
                break
    return len(used) / len(targets)


def score_item(target: Target, transcript: str) -> ItemScores:
    texts = target.regions or tuple(line for line in target.text.split("\n") if line)
    targets = [text.lower() for text in texts]
    words = read_words(transcript)
    return {"pned": pned(targets, words), "recall": recall(targets, words)}


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    return {name: mean_of(items, name) for name in ("pned", "recall")}


def read_prompts(path: Path) -> list[BenchmarkPrompt]:
    """LeX-Bench's evaluation JSON: a list of {"prompt_idx" (or "image_name"), "caption",
    "text": [one string per text to render]}; images are named by `prompt_idx`."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        BenchmarkPrompt(
            key=str(row.get("prompt_idx", row.get("image_name", index))),
            prompt=row.get("caption", ""),
            target=Target(text="\n".join(row["text"]), regions=tuple(row["text"])),
        )
        for index, row in enumerate(rows)
    ]


PROTOCOL = Protocol(
    name="lex",
    title="LeX-Bench",
    version="1",
    metrics=("pned", "recall"),
    score_item=score_item,
    aggregate=aggregate,
    official_code=(
        "zhaoshitian/LeX-Art@48a80d51b1535f6ce49b5cc1d114d5cf0b0960ed "
        "evaluation/cal_pned_and_recall.py"
    ),
    official_engine="PaddleOCR PP-OCRv3 (its JSON output)",
    lower_is_better=frozenset({"pned"}),
    read_prompts=read_prompts,
    deviations="Recall is NaN (skipped by the mean) for a target without text, where the "
    "official script divides by zero.",
)
