"""OCR round-trip metrics: how well an image's transcript matches the prompt it was drawn from.

Every per-pair metric is a pure function `metric(prompt, transcript) -> float`, so the same code
scores a folder of images, a rerank candidate or a unit test. `trigram` reproduces the post's
selection metric exactly (nostalgebraist-autoresponder `diffusion_helpers.get_ngram_similarity`:
`ngram.NGram([gold], N=3).search(candidate)` after stripping spaces at both ends of each line);
the others make scores comparable with published benchmarks (docs/eval.md; for a benchmark's
own numbers, its protocol in `textimg.eval.protocols`). Aggregates (bootstrap CI, best of K,
exact share) live here too because they must know which direction of each metric is better.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein
from scipy.optimize import linear_sum_assignment

_WHITESPACE = re.compile(r"\s+")


def strip_line_spaces(text: str) -> str:
    """Strip spaces (only ' ') at both ends of each line, as the original does to prompt and OCR."""
    return "\n".join(line.strip(" ") for line in text.split("\n"))


def fold(text: str) -> str:
    """Lowercase and collapse every whitespace run (line breaks included) to one space.

    Used by the case-insensitive metrics: line breaks from OCR line grouping are less reliable than
    the characters themselves, so the forgiving variants ignore them.
    """
    return _WHITESPACE.sub(" ", text).strip().lower()


def _padded_trigrams(text: str) -> Counter[str]:
    padded = "$$" + text + "$$"
    return Counter(padded[i : i + 3] for i in range(len(padded) - 2))


def trigram_similarity(a: str, b: str) -> float:
    """`$$`-padded character-trigram multiset Jaccard, what `ngram.NGram.compare(a, b)` computes.

    shared / (|A| + |B| - shared); case-sensitive, whitespace kept, 0.0 when nothing is shared,
    and 1.0 for two empty strings (both are `$$$$`).
    """
    grams_a, grams_b = _padded_trigrams(a), _padded_trigrams(b)
    shared = sum((grams_a & grams_b).values())
    if shared == 0:
        return 0.0
    return shared / (sum(grams_a.values()) + sum(grams_b.values()) - shared)


def trigram(prompt: str, transcript: str) -> float:
    """The post's metric: trigram similarity after per-line space stripping (higher is better)."""
    return trigram_similarity(strip_line_spaces(prompt), strip_line_spaces(transcript))


def trigram_ci(prompt: str, transcript: str) -> float:
    """`trigram` on folded text, so case and line breaking no longer count (higher is better)."""
    return trigram_similarity(fold(prompt), fold(transcript))


def cer(prompt: str, transcript: str) -> float:
    """Character error rate: edits / len(prompt), per-line stripped (lower is better, may exceed 1).

    An empty prompt has no characters to divide by: 0.0 if the transcript is empty too, else 1.0.
    """
    reference, hypothesis = strip_line_spaces(prompt), strip_line_spaces(transcript)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return Levenshtein.distance(reference, hypothesis) / len(reference)


def ned(prompt: str, transcript: str) -> float:
    """Normalized edit distance: edits / max(len) in [0, 1], per-line stripped (lower is better).

    Two empty strings are at distance 0.0.
    """
    return Levenshtein.normalized_distance(strip_line_spaces(prompt), strip_line_spaces(transcript))


def exact(prompt: str, transcript: str) -> float:
    """1.0 when the transcript equals the prompt, case-sensitive, after per-line space stripping."""
    return float(strip_line_spaces(prompt) == strip_line_spaces(transcript))


def exact_ci(prompt: str, transcript: str) -> float:
    """1.0 when the folded transcript equals the folded prompt (case and whitespace ignored)."""
    return float(fold(prompt) == fold(transcript))


def word_accuracy(prompt: str, transcript: str) -> float:
    """Share of the prompt's words found in the transcript, matched as multisets, case-sensitive.

    Word order is ignored. Not MARIO-Eval's recall, which lowercases both sides and adds 1e-8 to
    the count (the `mario` protocol scores that). A prompt without words scores 1.0 when the
    transcript has none either, else 0.0.
    """
    reference, hypothesis = Counter(prompt.split()), Counter(transcript.split())
    total = sum(reference.values())
    if total == 0:
        return 1.0 if not hypothesis else 0.0
    return sum((reference & hypothesis).values()) / total


def _paired_lines(prompt: str, transcript: str) -> list[tuple[str, str]]:
    """Prompt line i against transcript line i (missing lines are empty); AnyText crops per line."""
    reference = [line.strip() for line in prompt.split("\n")]
    hypothesis = [line.strip() for line in transcript.split("\n")]
    hypothesis += [""] * (len(reference) - len(hypothesis))
    return list(zip(reference, hypothesis, strict=False))


def anytext_sentence_accuracy(prompt: str, transcript: str) -> float:
    """Per-line exact, case-sensitive match, averaged over the prompt's lines (one value per image).

    AnyText's Sen.ACC pools lines over the whole benchmark and cuts them to 20 lines of 20
    characters; the `anytext` protocol scores that."""
    pairs = _paired_lines(prompt, transcript)
    return sum(float(ref == hyp) for ref, hyp in pairs) / len(pairs)


def anytext_ned(prompt: str, transcript: str) -> float:
    """Per-line similarity 1 - Lev/max(len), averaged over the image's lines (higher is better).

    Always >= `anytext_sentence_accuracy` (the sanity check from ControlText#2). AnyText's NED
    pools lines over the benchmark, divides by max(len) + 1e-5 and compares recognizer-dictionary
    ids; the `anytext` protocol scores that.
    """
    pairs = _paired_lines(prompt, transcript)
    return sum(Levenshtein.normalized_similarity(ref, hyp) for ref, hyp in pairs) / len(pairs)


def _ocr_boxes(transcript: str) -> list[str]:
    """What GlyphControl compares against: each OCR line and each word in it."""
    lines = [line.strip() for line in transcript.split("\n") if line.strip()]
    return lines + [word for line in lines for word in line.split()]


def glyph_accuracy(prompt: str, transcript: str) -> float:
    """The prompt equals one OCR line or one word of a line (case-sensitive).

    GlyphControl's Acc compares with EasyOCR's boxes, which are not split into words here; the
    `glyphcontrol` protocol scores its ocr_acc.py counters."""
    return float(prompt.strip() in _ocr_boxes(transcript))


def glyph_accuracy_ci(prompt: str, transcript: str) -> float:
    """`glyph_accuracy` after lowercasing both sides (GlyphControl's Âcc: `glyphcontrol`)."""
    return glyph_accuracy(prompt.lower(), transcript.lower())


def glyph_levenshtein(prompt: str, transcript: str) -> float:
    """Smallest edit distance to any OCR line or word of a line (lower is better); GlyphControl's
    LD is the `glyphcontrol` protocol's.

    NaN when nothing was read: GlyphControl skips such images, which flatters LD; aggregates here
    skip NaN the same way, and the row's `transcript` shows why.
    """
    boxes = _ocr_boxes(transcript)
    if not boxes:
        return math.nan
    return float(min(Levenshtein.distance(prompt.strip(), box) for box in boxes))


def _cvtg_words(prompt: str, transcript: str) -> tuple[list[str], list[str]]:
    """CVTG-2K's word lists: lowercased, whitespace-split; nothing read counts as one empty word."""
    return prompt.lower().split(), transcript.lower().split() or [""]


def cvtg_word_accuracy(prompt: str, transcript: str) -> float:
    """Share of the prompt's words that are among the OCR words, CVTG-2K-style.

    Words lowercased and split on whitespace, each prompt word (repeats too) found or not by
    membership, not multiset matching. TextCrafter publishes no scoring code, so this follows the
    benchmark's stated definition (the `cvtg2k` protocol); NaN for a prompt without words.
    """
    reference, hypothesis = _cvtg_words(prompt, transcript)
    if not reference:
        return math.nan
    read = set(hypothesis)
    return sum(word in read for word in reference) / len(reference)


def cvtg_ned(prompt: str, transcript: str) -> float:
    """CVTG-2K "NED", a similarity (higher is better), averaged over the prompt's words.

    Per prompt word: the OCR word `difflib.get_close_matches(word, words, n=1, cutoff=0)` ranks
    closest, scored 1 - Lev / (max(len) + 1e-5) (TextCrafter publishes no scoring code; the
    `cvtg2k` protocol follows its stated definition). NaN for a prompt without words.
    """
    reference, hypothesis = _cvtg_words(prompt, transcript)
    if not reference:
        return math.nan
    similarities = []
    for word in reference:
        closest = difflib.get_close_matches(word, hypothesis, n=1, cutoff=0)[0]
        longest = max(len(word), len(closest))
        similarities.append(1 - Levenshtein.distance(word, closest) / (longest + 1e-5))
    return sum(similarities) / len(similarities)


def _lex_items(prompt: str, transcript: str) -> tuple[list[str], list[str]]:
    """LeX-Bench's lists: the prompt's lines and the OCR's lines (its boxes), lowercased and
    stripped; nothing read counts as one empty box, as LeX-Bench's script pads it."""
    reference = [line.strip().lower() for line in prompt.split("\n") if line.strip()]
    hypothesis = [line.strip().lower() for line in transcript.split("\n") if line.strip()]
    return reference, hypothesis or [""]


def lex_pned(prompt: str, transcript: str) -> float:
    """LeX-Bench PNED (lower is better, 0 = every text read exactly; not bounded by 1).

    Prompt lines and OCR lines are paired by the Hungarian algorithm on their normalized edit
    distances (Lev / max(len)); PNED = the paired distances summed + 1 for each line left
    unpaired on either side (LeX-Art `cal_pned_and_recall.py`). NaN for a prompt without text.
    """
    reference, hypothesis = _lex_items(prompt, transcript)
    if not reference:
        return math.nan
    cost = np.array(
        [[Levenshtein.normalized_distance(r, h) for h in hypothesis] for r in reference]
    )
    rows, columns = linear_sum_assignment(cost)
    return float(cost[rows, columns].sum()) + abs(len(reference) - len(hypothesis))


LEX_RECALL_THRESHOLD = 0.3
"""LeX-Bench counts a prompt text as recalled when an OCR box is within this normalized distance."""


def lex_recall(prompt: str, transcript: str) -> float:
    """LeX-Bench Recall@NED<=0.3: share of prompt lines matched by an OCR line within 0.3.

    Greedy, as LeX-Art's script: each prompt line in order takes the first unused OCR line within
    the threshold; every OCR line serves once. NaN for a prompt without text.
    """
    reference, hypothesis = _lex_items(prompt, transcript)
    if not reference:
        return math.nan
    used: set[int] = set()
    for line in reference:
        for index, read in enumerate(hypothesis):
            if index in used:
                continue
            if Levenshtein.normalized_distance(line, read) <= LEX_RECALL_THRESHOLD:
                used.add(index)
                break
    return len(used) / len(reference)


Metric = Callable[[str, str], float]

METRICS: dict[str, Metric] = {
    "trigram": trigram,
    "trigram_ci": trigram_ci,
    "cer": cer,
    "ned": ned,
    "exact": exact,
    "exact_ci": exact_ci,
    "word_accuracy": word_accuracy,
    "anytext_sen_acc": anytext_sentence_accuracy,
    "anytext_ned": anytext_ned,
    "glyph_acc": glyph_accuracy,
    "glyph_acc_ci": glyph_accuracy_ci,
    "glyph_ld": glyph_levenshtein,
    "cvtg_word_acc": cvtg_word_accuracy,
    "cvtg_ned": cvtg_ned,
    "lex_pned": lex_pned,
    "lex_recall": lex_recall,
}
"""Every per-pair metric by the column name it gets in results and summaries."""

LOWER_IS_BETTER = frozenset({"cer", "ned", "glyph_ld", "lex_pned"})
"""Metrics where the best of K samples is the minimum, not the maximum."""


def score_pair(prompt: str, transcript: str) -> dict[str, float]:
    """All metrics of one (prompt, transcript) pair, keyed as in `METRICS`."""
    return {name: metric(prompt, transcript) for name, metric in METRICS.items()}


def mean_ci(
    values: Iterable[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean with a percentile-bootstrap confidence interval, NaN values skipped.

    Returns (mean, low, high); all NaN when no value is left. A fixed seed keeps summaries
    reproducible, so two runs on the same images write the same summary.json.
    """
    array = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if array.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, array.size, size=(resamples, array.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(array.mean()), float(low), float(high)


def best_of_k(groups: Iterable[Sequence[float]], metric: str) -> list[float]:
    """The best value of each prompt's K samples (max, or min for `LOWER_IS_BETTER` metrics).

    Average the result for "mean over prompts of the best of K": what rejection sampling with an
    oracle that knew the metric would reach.
    """
    pick = min if metric in LOWER_IS_BETTER else max
    best = []
    for values in groups:
        finite = [v for v in values if not math.isnan(v)]
        best.append(pick(finite) if finite else math.nan)
    return best


def exact_share(groups: Iterable[Sequence[float]]) -> float:
    """Share of prompts with at least one exact match among their samples (`exact` values)."""
    hits = [any(v == 1.0 for v in values) for values in groups]
    return sum(hits) / len(hits) if hits else math.nan
