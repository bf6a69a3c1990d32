"""STRICT's order-preserving OCR scores (tianyu-z/STRICT-Bench `ocr/core.py` and `ocr/ned.py`,
aggregated by `ocr/main.py`): NED, WER and CER of the whole page, plus difflib similarity, each
averaged over pages with a percentile bootstrap 95% interval.

STRICT reads a page with Tesseract `image_to_string`, whose output is lines separated by
"\\n": a transcript is that output as it is. Both sides collapse whitespace runs to one space
and are stripped; case and punctuation count. WER and CER are jiwer's (word and character edits
over the target's length, so they can exceed 1); NED is the Levenshtein distance over the
length of the edit path that Levenshtein's opcodes take (arXiv:2201.06115), so it depends on
which optimal path rapidfuzz's backtrace picks, as STRICT's does. An empty side against a
non-empty one scores 1 everywhere, two empty sides 0.

Not reproduced: the "(Truncated)" scores, which cut the target to as many CLIP-tokenizer tokens
as were read and need that tokenizer's files. The official bootstrap draws from an unseeded
generator, so its interval moves from run to run; textimg draws the same 1000 resamples of the
mean and reads the same sorted positions (index int(0.025 n) - 1 and int(0.975 n) - 1) from a
generator seeded with 0, so its interval is reproducible.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from textimg.eval.protocols.base import BenchmarkPrompt, ItemScores, Protocol, Target, mean_of
from textimg.eval.protocols.textatlas import whole_stem  # STRICT also keys by the whole name

METRICS = ("ned", "wer", "cer", "similarity")
BOOTSTRAP_SAMPLES = 1000  # ocr/main.py's --n_bootstrap default
BOOTSTRAP_SEED = 0


def normalize(text: str) -> str:
    """`strict_text_processing`: whitespace runs to one space, stripped; nothing else."""
    return re.sub(r"\s+", " ", text).strip() if text else ""


def path_ned(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over the number of operations (matches included) on its path."""
    distance = Levenshtein.distance(reference, hypothesis)
    length = sum(
        (j2 - j1) if tag == "insert" else (i2 - i1)
        for tag, i1, i2, j1, j2 in Levenshtein.opcodes(reference, hypothesis)
    )
    return distance / length if length else 0.0


def error_rate(reference: Sequence[str], hypothesis: Sequence[str]) -> float:
    """jiwer's WER/CER on pre-split units: edits over the reference's length."""
    return Levenshtein.distance(reference, hypothesis) / len(reference)


def score_item(target: Target, transcript: str) -> ItemScores:
    reference, hypothesis = normalize(target.text), normalize(transcript)
    if not reference and not hypothesis:
        return {"ned": 0.0, "wer": 0.0, "cer": 0.0, "similarity": 1.0}
    if not reference or not hypothesis:
        return {"ned": 1.0, "wer": 1.0, "cer": 1.0, "similarity": 0.0}
    return {
        "ned": path_ned(reference, hypothesis),
        "wer": error_rate(reference.split(), hypothesis.split()),
        "cer": error_rate(reference, hypothesis),
        "similarity": difflib.SequenceMatcher(None, reference, hypothesis).ratio(),
    }


def bootstrap_interval(values: Sequence[float]) -> tuple[float, float]:
    """`bootstrap_statistics`' percentile interval of the mean, from a seeded generator."""
    if len(values) < 2:
        return (float(np.mean(values)), float(np.mean(values))) if values else (0.0, 0.0)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    array = np.asarray(values, dtype=float)
    means = np.sort(
        [
            array[rng.integers(0, len(array), size=len(array))].mean()
            for _ in range(BOOTSTRAP_SAMPLES)
        ]
    )
    low = max(0, int(0.025 * BOOTSTRAP_SAMPLES) - 1)
    high = min(BOOTSTRAP_SAMPLES - 1, int(0.975 * BOOTSTRAP_SAMPLES) - 1)
    return float(means[low]), float(means[high])


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    """Plain means (`bootstrap_statistics`' "mean") and their seeded bootstrap intervals."""
    result = {name: mean_of(items, name) for name in METRICS}
    for name in ("ned", "wer", "cer"):
        low, high = bootstrap_interval([item[name] for item in items])
        result[f"{name}_ci_low"], result[f"{name}_ci_high"] = low, high
    return result


def read_prompts(path: Path) -> list[BenchmarkPrompt]:
    """STRICT's inputs: a directory of `KEY.txt` ground truths (what `ocr/main.py` pairs with
    `KEY.png`), or its text_data JSON ({language: [{"rowid", "text"}]}), whose whole texts are
    the targets (the generation script renders a prefix of each and writes it as `ROWID.txt`)."""
    if path.is_dir():
        return [
            BenchmarkPrompt(key=text.stem, prompt="", target=Target(text=text.read_text("utf-8")))
            for text in sorted(path.glob("*.txt"))
        ]
    languages = json.loads(path.read_text(encoding="utf-8"))
    return [
        BenchmarkPrompt(key=str(row["rowid"]), prompt=row["text"], target=Target(text=row["text"]))
        for rows in languages.values()
        for row in rows
    ]


PROTOCOL = Protocol(
    name="strict",
    title="STRICT",
    version="1",
    metrics=METRICS,
    score_item=score_item,
    aggregate=aggregate,
    official_code=(
        "tianyu-z/STRICT-Bench@921ddb182fe4609c709a2ca3f8f155b0000b0920 "
        "ocr/core.py + ocr/ned.py + ocr/main.py"
    ),
    official_engine="Tesseract (pytesseract image_to_string, --psm 3)",
    lower_is_better=frozenset({"ned", "wer", "cer"}),
    read_prompts=read_prompts,
    image_key=whole_stem,
    deviations="Bootstrap interval from a generator seeded with 0 (the official one is unseeded); "
    "the CLIP-token truncated scores are not computed.",
)
