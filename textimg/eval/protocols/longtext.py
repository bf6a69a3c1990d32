"""LongText-Bench's text score (X-Omni `textbench/evaluate_text_reward.py` and
`summary_scores.py`): the share of target words found in the read bag of words, pooled.

LongText reads each image with Qwen2.5-VL, one free-text answer: a transcript is that answer as
it is. The target is the prompt's `text` list joined with spaces (here the regions, or the
whole text). Both sides lose everything but CJK, ASCII letters and digits, whitespace and
French accented letters; English (`--mode en`) then collapses whitespace and lowercases, and
matching counts words in the multiset intersection; Chinese (`--mode zh`) keeps only those
characters and counts characters. The official run picks the mode per prompt file; textimg
picks it per image: Chinese when the target holds a CJK ideograph (U+4E00-U+9FFF).

The official hallucination filter means to delete "addCriterion" and "No text recognized."
but, assigning each pass from the unfiltered text, deletes only the last keyword; textimg does
the same for `text_score` and offers `text_score_clean` with both deleted. Per-image accuracy
divides by the target's word count and fails on an empty target: textimg gives NaN there.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from textimg.eval.protocols.base import BenchmarkPrompt, ItemScores, Protocol, Target, mean_of
from textimg.eval.protocols.oneig import (  # X-Omni took its text cleaning from OneIG
    CHINESE,
    DROPPED,
    HALLUCINATIONS,
    KEPT_IN_CHINESE,
    remove_hallucinations,
)


def official_filter(text: str) -> str:
    """What X-Omni's filter does: only the last keyword is deleted."""
    return text.replace(HALLUCINATIONS[-1], "")


def preprocess(text: str, chinese: bool) -> str:
    """`preprocess_string` in `en` or `zh` mode."""
    if chinese:
        return "".join(KEPT_IN_CHINESE.findall(text)).strip()
    return re.sub(r"\s+", " ", DROPPED.sub("", text)).strip().lower()


def matches(target: str, read: str, chinese: bool) -> tuple[int, int]:
    """(matched, total) target words, or characters in `zh` mode, in the read multiset."""
    units = list if chinese else str.split
    wanted = units(target)
    return sum((Counter(wanted) & Counter(units(read))).values()), len(wanted)


def score_item(target: Target, transcript: str) -> ItemScores:
    texts = " ".join(target.parts)
    chinese = bool(CHINESE.search(texts))
    reference = preprocess(texts, chinese)
    scores: ItemScores = {"target_words": 0}
    for name, cleaned in (("", official_filter), ("_clean", remove_hallucinations)):
        matched, total = matches(reference, preprocess(cleaned(transcript), chinese), chinese)
        scores[f"text_accuracy{name}"] = matched / total if total else math.nan
        scores[f"matched_words{name}"] = matched
        scores["target_words"] = total
    return scores


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    """Matched words over target words, summed over all images (`summary_scores.py`)."""
    total = sum(item["target_words"] for item in items)
    result = {}
    for name in ("", "_clean"):
        matched = sum(item[f"matched_words{name}"] for item in items)
        result[f"text_score{name}"] = matched / total if total else 0.0
    result["mean_text_accuracy"] = mean_of(items, "text_accuracy")
    return result


def read_prompts(path: Path) -> list[BenchmarkPrompt]:
    """`text_prompts.jsonl` / `text_prompts_zh.jsonl`: one {"prompt_id", "prompt", "text": [...],
    "category", "length"} per line; images are `PROMPTID.png` or `PROMPTID_*.png`."""
    prompts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts = tuple(row["text"])
            target = Target("\n".join(texts), texts)
            prompts.append(BenchmarkPrompt(str(int(row["prompt_id"])), row["prompt"], target))
    return prompts


def prompt_id(stem: str) -> tuple[str, int]:
    """X-Omni's naming: the integer before the first "_" is the prompt id; the rest, when a
    number, the sample."""
    head, _, rest = stem.partition("_")
    return str(int(head)), int(rest) if rest.isdigit() else 0


PROTOCOL = Protocol(
    name="longtext",
    title="LongText-Bench",
    version="1",
    metrics=("text_score",),
    score_item=score_item,
    aggregate=aggregate,
    official_code=(
        "X-Omni-Team/X-Omni@2b8237bb3789638c290eeda3e83ed81bd3652c3b "
        "textbench/evaluate_text_reward.py + textbench/summary_scores.py"
    ),
    official_engine="Qwen2.5-VL-7B-Instruct (a VLM asked for the text)",
    read_prompts=read_prompts,
    image_key=prompt_id,
    deviations="The language mode is chosen per image from the target (the official run takes "
    "it from the command line).",
    extra={
        "text_score_clean": "the text score with every hallucination keyword deleted, as the "
        "official filter intends",
        "mean_text_accuracy": "per-image accuracy averaged over images",
    },
)
