"""MARIO-Eval (TextDiffuser, Chen et al. 2023): word precision, recall, F-measure and accuracy.

Official code: microsoft/unilm `textdiffuser/eval/ocr_eval.py`. The target words are the words
inside single-quoted phrases of each prompt line (lowercased); the OCR words are the lines of
MaskTextSpotterV3's result file, one word each, stripped and lowercased.

Transcript mapping: the OCR words are the transcript's whitespace-split words. The target words
are the target's regions (else its text) split on whitespace.

Official quirks kept under the official names: words match as a multiset (each read word
consumes one target word); P and R divide by (count + 1e-8), so nothing read gives P = 0; F is
the harmonic mean of the averaged P and R, not a mean of per-image F; and `acc` compares the
sorted words concatenated without a separator, so "ab c" against a reading "a bc" is accurate.
`acc_words` compares the sorted word lists themselves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from textimg.eval.protocols.base import (
    BenchmarkPrompt,
    ItemScores,
    Protocol,
    Target,
    key_and_sample,
    mean_of,
)

EPSILON = 1e-8  # ocr_eval.py's guard in every division
QUOTED = re.compile(r"'(.*?)'")  # ocr_eval.py get_key_words: the keywords enclosed by ''


def target_words(target: Target) -> list[str]:
    """The target's words, lowercased (ocr_eval.py lowercases the prompt line)."""
    return [word.strip().lower() for part in target.parts for word in part.split()]


def score_item(target: Target, transcript: str) -> ItemScores:
    """ocr_eval.py `get_p_r_acc` for one image, plus the corrected accuracy."""
    truth = target_words(target)
    read = [word.strip().lower() for word in transcript.split()]
    unmatched = list(truth)
    matched = 0
    for word in read:
        if word in unmatched:
            unmatched.remove(word)
            matched += 1
    return {
        "precision": matched / (len(read) + EPSILON),
        "recall": matched / (len(truth) + EPSILON),
        "acc": float("".join(sorted(read)) == "".join(sorted(truth))),
        "acc_words": float(sorted(read) == sorted(truth)),
    }


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    """Means over images, F from the averaged P and R (ocr_eval.py's last loop)."""
    precision, recall = mean_of(items, "precision"), mean_of(items, "recall")
    return {
        "precision": precision,
        "recall": recall,
        "f": 2 * precision * recall / (precision + recall + EPSILON),
        "acc": mean_of(items, "acc"),
        "acc_words": mean_of(items, "acc_words"),
    }


def read_prompts(path: Path) -> list[BenchmarkPrompt]:
    """`MARIOEval/<dataset>/<dataset>.txt`: one prompt a line; key `<dataset>_<line index>`, the
    index ocr_eval.py looks the prompt up by; regions the quoted phrases."""
    prompts = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        phrases = tuple(QUOTED.findall(line.strip()))
        prompts.append(
            BenchmarkPrompt(
                key=f"{path.stem}_{index}",
                prompt=line.strip(),
                target=Target(text="\n".join(phrases), regions=phrases),
            )
        )
    return prompts


def image_key(stem: str) -> tuple[str, int]:
    """ocr_eval.py's names `{method}_{dataset}_{prompt index}_{image index}` give the key
    `{dataset}_{prompt index}`; any other name falls back to `KEY_j`."""
    parts = stem.split("_")
    if len(parts) == 4 and parts[2].isdigit() and parts[3].isdigit():
        return f"{parts[1]}_{parts[2]}", int(parts[3])
    return key_and_sample(stem)


PROTOCOL = Protocol(
    name="mario",
    title="MARIO-Eval (TextDiffuser)",
    version="1",
    metrics=("precision", "recall", "f", "acc"),
    score_item=score_item,
    aggregate=aggregate,
    official_code=(
        "microsoft/unilm@768a3c873f598bb9b4d4dfb9267b099e35f8fe56 textdiffuser/eval/ocr_eval.py"
    ),
    official_engine="MaskTextSpotterV3 (TextDiffuser-2 used Microsoft's Read API: unilm#1677)",
    read_prompts=read_prompts,
    image_key=image_key,
    deviations="transcript words stand in for MaskTextSpotterV3's one-word-a-line result file",
    extra={"acc_words": "accuracy on the sorted word lists, not their concatenation"},
)
