"""OneIG-Bench's text score (OneIG-Benchmark `scripts/text/text_score.py`, `text_utils.py`):
edit distance (ED), completion rate (CR), word accuracy (WAC) and their combination
1 - min(M, ED) (1 - CR) (1 - WAC) / M, with M = 100 for the English split and 50 for Chinese.

OneIG reads each grid cell with Qwen2.5-VL, one free-text answer per cell: a transcript is that
answer as it is. The official code first deletes the hard-coded hallucination strings
"addCriterion" and "No text recognized." from every answer, whoever produced it; textimg does
the same. The target is the benchmark's `text_content` cell, a Python list literal of the texts
(here `str(list(regions))`, or of the target's lines without regions), preprocessed as a string:
everything but CJK, ASCII letters and digits, whitespace and French accented letters is
deleted, so escapes such as "\\t" leave their letter. Text with Chinese keeps only those
characters (no spaces); otherwise whitespace runs become one space. Case counts. ED is the
unnormalized Levenshtein distance; CR is 1 for ED 0; WAC counts the target's words (Chinese:
characters) found in the read multiset. ED and CR are averaged per image; WAC pools the counts.
"""

from __future__ import annotations

import ast
import csv
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from textimg.eval.protocols.base import BenchmarkPrompt, ItemScores, Protocol, Target, mean_of

HALLUCINATIONS = ("addCriterion", "No text recognized.")
"""`clean_and_remove_hallucinations`' keyword list: strings Qwen2.5-VL emits instead of text."""
MAX_EDIT_DISTANCE = {"text_score": 100, "text_score_zh": 50}
"""The text score's ED cap per split: the English run uses 100, the Chinese run 50."""
DROPPED = re.compile(r"[^\u4e00-\u9fa5a-zA-Z0-9\sàâäéèêëîïôöùûüçÀÂÄÉÈÊËÎÏÔÖÙÛÜÇ]")
KEPT_IN_CHINESE = re.compile(r"[\u4e00-\u9fa5a-zA-Z0-9àâäéèêëîïôöùûüçÀÂÄÉÈÊËÎÏÔÖÙÛÜÇ]")
CHINESE = re.compile("[\u4e00-\u9fff]")


def remove_hallucinations(text: str) -> str:
    """Delete each hard-coded keyword, as OneIG does before scoring any reading."""
    for keyword in HALLUCINATIONS:
        text = text.replace(keyword, "")
    return text


def preprocess(text: str) -> str:
    """`preprocess_string`: drop symbols; Chinese text loses its spaces too."""
    cleaned = DROPPED.sub("", text)
    if CHINESE.search(cleaned):
        return "".join(KEPT_IN_CHINESE.findall(text)).strip()
    return re.sub(r"\s+", " ", cleaned).strip()


def target_cell(target: Target) -> str:
    """The target as OneIG's CSV holds it: the list literal of its texts."""
    return str(list(target.regions or target.text.split("\n")))


def word_matches(target: str, read: str) -> tuple[int, int]:
    """(matched, total) target words, or characters for Chinese, in the read multiset."""
    units = (lambda s: list(s)) if CHINESE.search(target) else str.split
    wanted = Counter(units(target))
    return sum((wanted & Counter(units(read))).values()), sum(wanted.values())


def score_item(target: Target, transcript: str) -> ItemScores:
    reference = preprocess(target_cell(target))
    read = preprocess(remove_hallucinations(transcript))
    distance = float(Levenshtein.distance(read, reference))
    matched, total = word_matches(reference, read)
    return {
        "ed": distance,
        "cr": float(distance == 0),
        "wac": matched / total if total > 0 else 0.0,
        "matched_words": matched,
        "target_words": total,
    }


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    """ED and CR averaged per image, WAC pooled, combined with each split's ED cap."""
    total = sum(item["target_words"] for item in items)
    result = {
        "ed": mean_of(items, "ed"),
        "cr": mean_of(items, "cr"),
        "wac": sum(item["matched_words"] for item in items) / total if total else 0.0,
    }
    for name, cap in MAX_EDIT_DISTANCE.items():
        result[name] = 1 - min(cap, result["ed"]) * (1 - result["cr"]) * (1 - result["wac"]) / cap
    return result


def read_prompts(path: Path) -> list[BenchmarkPrompt]:
    """OneIG's `text_content.csv` / `text_content_zh.csv`: columns id, prompt_en (prompt_cn),
    text_content (a list literal of the texts to render); images are named by `id`."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    prompts = []
    for row in rows:
        texts = tuple(ast.literal_eval(row["text_content"]))
        prompt = row.get("prompt_en") or row.get("prompt_cn") or ""
        prompts.append(BenchmarkPrompt(row["id"], prompt, Target("\n".join(texts), texts)))
    return prompts


PROTOCOL = Protocol(
    name="oneig",
    title="OneIG-Bench (text)",
    version="1",
    metrics=("ed", "cr", "wac", "text_score"),
    score_item=score_item,
    aggregate=aggregate,
    official_code=(
        "OneIG-Bench/OneIG-Benchmark@41b49831e79e6dde5323618c164da1c4cf0f699d "
        "scripts/text/text_score.py + scripts/text/text_utils.py"
    ),
    official_engine="Qwen2.5-VL-7B-Instruct (a VLM asked for the text)",
    lower_is_better=frozenset({"ed"}),
    read_prompts=read_prompts,
    extra={"text_score_zh": "the text score with the Chinese split's ED cap of 50"},
)
