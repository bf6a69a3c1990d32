"""Where synthetic transcripts come from: an embedded English source, or a user's own texts.

The model is conditioned on what an STR service reads in images people post: short phrases,
captions, meme lines, numbers, handles. The embedded source imitates that with English words drawn
by frequency from `wordfreq`'s bundled lists (no network), in mixed case with digits and
punctuation. A text here is a word sequence; line breaks are chosen when the text is laid out.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from textimg.errors import TextimgError

VOCABULARY_SIZE = 30_000
FREQUENCY_EXPONENT = 0.5
"""Words are drawn with probability ~ frequency**0.5: still Zipf-shaped (common words dominate),
but flat enough that a 407k corpus sees tens of thousands of distinct words, not mostly "the"."""
MAX_WORDS = 10
WORD_STOP = 0.28
"""After each word, the text ends with this probability."""


@lru_cache(maxsize=1)
def english_vocabulary() -> tuple[tuple[str, ...], list[float]]:
    """The most frequent ASCII English words and the cumulative distribution to draw them by."""
    import wordfreq

    frequencies = wordfreq.get_frequency_dict("en")
    words = [w for w in wordfreq.top_n_list("en", VOCABULARY_SIZE * 2) if _is_plain_word(w)]
    words = words[:VOCABULARY_SIZE]
    weights = [frequencies.get(w, 1e-9) ** FREQUENCY_EXPONENT for w in words]
    cumulative = list(itertools.accumulate(weights))
    return tuple(words), [c / cumulative[-1] for c in cumulative]


def _is_plain_word(word: str) -> bool:
    return word.isascii() and word.replace("'", "").isalnum()


def _number(rng: random.Random) -> str:
    """A number as people write them in posts: counts, years, prices, times, percentages."""
    kind = rng.randrange(6)
    if kind == 0:
        return str(rng.randrange(0, 100))
    if kind == 1:
        return str(rng.randrange(1950, 2030))
    if kind == 2:
        return f"${rng.randrange(1, 200)}.{rng.randrange(0, 100):02d}"
    if kind == 3:
        return f"{rng.randrange(1, 13)}:{rng.randrange(0, 60):02d}"
    if kind == 4:
        return f"{rng.randrange(1, 101)}%"
    return str(rng.randrange(100, 100_000))


def _cased(words: list[str], rng: random.Random) -> list[str]:
    """Apply one casing style to a phrase: lower, Sentence, Title or UPPER (as in memes)."""
    draw = rng.random()
    style = 0 if draw < 0.4 else 1 if draw < 0.7 else 2 if draw < 0.85 else 3
    if style == 1 and words:
        return [words[0][:1].upper() + words[0][1:], *words[1:]]
    if style == 2:
        return [w[:1].upper() + w[1:] for w in words]
    if style == 3:
        return [w.upper() for w in words]
    return words


def english_text(rng: random.Random) -> str:
    """One short post-like text: 1-10 words by frequency, with casing, numbers and punctuation."""
    words, cumulative = english_vocabulary()
    # Geometric word count (mean ~3.6): mostly short captions, sometimes a sentence.
    count = min(MAX_WORDS, 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - WORD_STOP)))
    # bisect on a precomputed CDF: weighted choice without rebuilding it for every sample.
    last = len(words) - 1
    phrase = [words[min(bisect.bisect(cumulative, rng.random()), last)] for _ in range(count)]
    if rng.random() < 0.2:
        phrase.insert(rng.randrange(len(phrase) + 1), _number(rng))
    if rng.random() < 0.05:
        phrase[0] = rng.choice(["@", "#"]) + phrase[0]
    phrase = _cased(phrase, rng)
    for i in range(len(phrase) - 1):
        if rng.random() < 0.06:
            phrase[i] += rng.choice([",", ",", ";", ":", " -"])
    if rng.random() < 0.45:
        phrase[-1] += rng.choice([".", ".", "!", "?", "...", "!!", "?!", ":)"])
    if rng.random() < 0.04:
        phrase[0] = '"' + phrase[0]
        phrase[-1] += '"'
    return " ".join(phrase)


def load_text_file(path: Path) -> dict[int, str]:
    """A user's corpus by line number (from 1, blank lines skipped): one text a line, a literal
    `\\n` in a line standing for a line break. Numbered so a text that cannot be drawn is named
    by the line a user can find in the file."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TextimgError(f"text file not found: {path}") from None
    except UnicodeDecodeError:
        raise TextimgError(f"text file is not UTF-8: {path}") from None
    texts = {
        number: line.replace("\\n", "\n").strip() for number, line in enumerate(raw.splitlines(), 1)
    }
    texts = {number: text for number, text in texts.items() if text.strip()}
    if not texts:
        raise TextimgError(f"text file has no non-empty lines: {path}")
    return texts


def pick_text(rng: random.Random, corpus: Sequence[str] | None) -> str:
    """A text for one sample: from the user's corpus when given, else the embedded source."""
    if corpus:
        return corpus[rng.randrange(len(corpus))]
    return english_text(rng)
