"""TextAtlasEval's OCR scores (CSU-JPG/TextAtlas `evaluation/cal_ocr.py` and `cal_ocr_cer.py`):
word accuracy and F1 with a fuzzy word match, and CER.

The official script joins PaddleOCR's detections with single spaces after stripping each; a
transcript maps onto it line for line: every non-empty "\\n"-separated line is one detection, so
the read text is the stripped lines joined by " ". Words are the lowercased whitespace split of
both sides; each read word in order takes the first unused target word whose fuzzywuzzy ratio
(Levenshtein ratio x 100, rounded) is at least 80. Accuracy and F1 are pooled over the whole set
(summed matches over summed target and read words, x 100), not averaged per image. CER is the
case-sensitive Levenshtein distance over the longer of the two raw texts (so it never exceeds
1), averaged over images whose target is not empty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from textimg.eval.protocols.base import BenchmarkPrompt, ItemScores, Protocol, Target

FUZZY_THRESHOLD = 80
"""TextAtlas's `--threshold` default: a read word matches a target word at ratio >= 80."""


def read_text(transcript: str) -> str:
    """The transcript as `OCREvaluatorFuzzy.detect_text` returns PaddleOCR's lines."""
    return " ".join(line.strip() for line in transcript.split("\n") if line)


def fuzzy_matches(target_words: list[str], read_words: list[str]) -> int:
    """Read words greedily matched, each to the first unused target word at ratio >= 80."""
    matched: set[int] = set()
    for word in read_words:
        for index, candidate in enumerate(target_words):
            if index not in matched and _ratio(word, candidate) >= FUZZY_THRESHOLD:
                matched.add(index)
                break
    return len(matched)


def _ratio(a: str, b: str) -> int:
    """fuzzywuzzy's `fuzz.ratio` with python-Levenshtein: the rounded ratio x 100."""
    return 100 if a == b else round(fuzz.ratio(a, b))


def character_error_rate(target: str, read: str) -> float:
    """TextAtlas CER: distance over the longer text; 0.0 (and skipped) for an empty target."""
    if not target:
        return 0.0
    return Levenshtein.distance(target, read) / max(len(target), len(read))


def _percent(part: float, whole: float) -> float:
    return part / whole * 100 if whole > 0 else 0


def _f1(precision: float, recall: float) -> float:
    total = precision + recall
    return 2 * precision * recall / total if total > 0 else 0


def score_item(target: Target, transcript: str) -> ItemScores:
    read = read_text(transcript)
    target_words = target.text.strip().lower().split()
    read_words = read.strip().lower().split()
    correct = fuzzy_matches(target_words, read_words)
    precision = _percent(correct, len(read_words))
    recall = _percent(correct, len(target_words))
    return {
        "accuracy": recall,
        "precision": precision,
        "f1": _f1(precision, recall),
        "cer": character_error_rate(target.text, read),
        "correct_words": correct,
        "predicted_words": len(read_words),
        "ground_truth_words": len(target_words),
        "has_target": float(bool(target.text)),
    }


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    """Pooled word counts for accuracy and F1 (as `cal_ocr_hf`); CER over non-empty targets."""
    correct = sum(item["correct_words"] for item in items)
    precision = _percent(correct, sum(item["predicted_words"] for item in items))
    accuracy = _percent(correct, sum(item["ground_truth_words"] for item in items))
    scored = [item["cer"] for item in items if item["has_target"]]
    return {
        "accuracy": accuracy,
        "f1": _f1(precision, accuracy),
        "cer": sum(scored) / len(scored) if scored else 0,
    }


def read_prompts(path: Path) -> list[BenchmarkPrompt]:
    """TextAtlasEval's JSON (the Hugging Face rows): a list of {"image_path", "annotation",
    "raw_text"}; generated images carry the `image_path` name."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        BenchmarkPrompt(
            key=Path(row["image_path"]).stem,
            prompt=row.get("annotation", ""),
            target=Target(text=row["raw_text"]),
        )
        for row in rows
    ]


def whole_stem(stem: str) -> tuple[str, int]:
    """TextAtlas names each image exactly as its `image_path`: the whole stem is the key."""
    return stem, 0


PROTOCOL = Protocol(
    name="textatlas",
    title="TextAtlasEval",
    version="1",
    metrics=("accuracy", "f1", "cer"),
    score_item=score_item,
    aggregate=aggregate,
    official_code=(
        "CSU-JPG/TextAtlas@7b349b9b9d47b390a3eef6125ff92b73effedb75 "
        "evaluation/cal_ocr.py + evaluation/cal_ocr_cer.py"
    ),
    official_engine="PaddleOCR (paddleocr==2.9.1, lang=en, angle classifier)",
    lower_is_better=frozenset({"cer"}),
    read_prompts=read_prompts,
    image_key=whole_stem,
)
