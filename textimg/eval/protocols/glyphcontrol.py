"""GlyphControl's SimpleBench/CreativeBench scoring (Yang et al. 2023): Acc, case-insensitive
Acc and LD.

Official code: AIGText/GlyphControl-release `ocr_acc.py` (the same counters feed
`test_on_benchmark.py`). EasyOCR `readtext` returns one text per detected box; an image is
accurate when the target equals one box's text exactly, and LD is the smallest Levenshtein
distance from the target to any box's text.

Transcript mapping: each non-empty transcript line (spaces at both ends stripped) is one box.
The target is the target's text, the word the benchmark's folder is named after.

Official quirk kept under `ld`: an image with no box adds nothing to LD (the counter skips it),
which flatters a model whose images show no text at all; when no image has a box, LD is 0.
`ld_all` counts such an image as the target's length (the distance to reading nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from textimg.eval.protocols.base import BenchmarkPrompt, ItemScores, Protocol, Target, mean_of

METRICS = ("acc", "acc_ci", "ld", "ld_all")


def score_item(target: Target, transcript: str) -> ItemScores:
    """ocr_acc.py's three counters for one image; `ld` absent when no box was read."""
    text = target.text
    boxes = [line.strip() for line in transcript.split("\n") if line.strip()]
    scores = {
        "acc": float(text in boxes),
        "acc_ci": float(text.lower() in [box.lower() for box in boxes]),
        "ld_all": float(min((Levenshtein.distance(text, box) for box in boxes), default=len(text))),
    }
    if boxes:
        scores["ld"] = scores["ld_all"]
    return scores


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    """Each counter's sum over its count: a mean over the images it saw (0 when none)."""
    return {name: mean_of(items, name) for name in METRICS}


def read_prompts(path: Path) -> list[BenchmarkPrompt]:
    """`text_prompts/raw/*/*.txt`: one text a line, the key it is saved under (a folder of
    `{text}_{j}.jpg`) and the prompt `A sign that says "{text}"` test_on_benchmark.py builds."""
    texts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        BenchmarkPrompt(
            key=text, prompt=f'A sign that says "{text.strip()}"', target=Target(text=text)
        )
        for text in texts
    ]


PROTOCOL = Protocol(
    name="glyphcontrol",
    title="GlyphControl SimpleBench / CreativeBench",
    version="1",
    metrics=("acc", "acc_ci", "ld"),
    score_item=score_item,
    aggregate=aggregate,
    official_code=(
        "AIGText/GlyphControl-release@5891d9b245ac9209c22e3d6d5e933b95d428a230 ocr_acc.py"
    ),
    official_engine="EasyOCR readtext (English, defaults)",
    lower_is_better=frozenset({"ld", "ld_all"}),
    read_prompts=read_prompts,
    deviations="transcript lines stand in for EasyOCR boxes",
    extra={"ld_all": "LD with an image that shows no text counted as len(target) edits"},
)
