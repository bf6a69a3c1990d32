"""Where synthetic transcripts come from: an embedded English source, or a user's own texts.

The model is conditioned on what an STR service reads in images people post: short phrases,
captions, meme lines, numbers, handles. The embedded source imitates that with English words drawn
by frequency from `wordfreq`'s bundled lists (no network), in mixed case with digits and
punctuation. A text here is a word sequence; line breaks are chosen when the text is laid out.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from textimg.errors import TextimgError

VOCABULARY_SIZE = 30_000
FREQUENCY_EXPONENT = 0.5
"""Words are drawn with probability ~ frequency**0.5: still Zipf-shaped (common words dominate),
but flat enough that a 407k corpus sees tens of thousands of distinct words, not mostly "the"."""
MAX_WORDS = 10


@lru_cache(maxsize=1)
def english_vocabulary() -> tuple[tuple[str, ...], np.ndarray]:
    """The most frequent ASCII English words and the cumulative distribution to draw them by."""
    import wordfreq

    frequencies = wordfreq.get_frequency_dict("en")
    words = [w for w in wordfreq.top_n_list("en", VOCABULARY_SIZE * 2) if _is_plain_word(w)]
    words = words[:VOCABULARY_SIZE]
    weights = np.array([frequencies.get(w, 1e-9) for w in words]) ** FREQUENCY_EXPONENT
    cumulative = np.cumsum(weights)
    return tuple(words), cumulative / cumulative[-1]


def _is_plain_word(word: str) -> bool:
    return word.isascii() and word.replace("'", "").isalnum()


def _number(rng: np.random.Generator) -> str:
    """A number as people write them in posts: counts, years, prices, times, percentages."""
    kind = rng.integers(6)
    if kind == 0:
        return str(rng.integers(0, 100))
    if kind == 1:
        return str(rng.integers(1950, 2030))
    if kind == 2:
        return f"${rng.integers(1, 200)}.{rng.integers(0, 100):02d}"
    if kind == 3:
        return f"{rng.integers(1, 13)}:{rng.integers(0, 60):02d}"
    if kind == 4:
        return f"{rng.integers(1, 101)}%"
    return str(rng.integers(100, 100_000))


def _cased(words: list[str], rng: np.random.Generator) -> list[str]:
    """Apply one casing style to a phrase: lower, Sentence, Title or UPPER (as in memes)."""
    style = rng.choice(4, p=[0.4, 0.3, 0.15, 0.15])
    if style == 1 and words:
        return [words[0][:1].upper() + words[0][1:], *words[1:]]
    if style == 2:
        return [w[:1].upper() + w[1:] for w in words]
    if style == 3:
        return [w.upper() for w in words]
    return words


def english_text(rng: np.random.Generator) -> str:
    """One short post-like text: 1-12 words by frequency, with casing, numbers and punctuation."""
    words, cumulative = english_vocabulary()
    count = int(min(MAX_WORDS, rng.geometric(0.28)))
    # searchsorted on a precomputed CDF: rng.choice(p=...) would rebuild it for every sample.
    picks = np.searchsorted(cumulative, rng.random(count), side="right")
    phrase = [words[min(i, len(words) - 1)] for i in picks]
    if rng.random() < 0.2:
        phrase.insert(int(rng.integers(len(phrase) + 1)), _number(rng))
    if rng.random() < 0.05:
        phrase[0] = rng.choice(["@", "#"]) + phrase[0]
    phrase = _cased(phrase, rng)
    for i in range(len(phrase) - 1):
        if rng.random() < 0.06:
            phrase[i] += str(rng.choice([",", ",", ";", ":", " -"]))
    if rng.random() < 0.45:
        phrase[-1] += str(rng.choice([".", ".", "!", "?", "...", "!!", "?!", ":)"]))
    if rng.random() < 0.04:
        phrase[0] = '"' + phrase[0]
        phrase[-1] += '"'
    return " ".join(phrase)


def load_text_file(path: Path) -> list[str]:
    """A user's corpus: one text a line, a literal `\\n` in a line standing for a line break."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TextimgError(f"text file not found: {path}") from None
    except UnicodeDecodeError:
        raise TextimgError(f"text file is not UTF-8: {path}") from None
    texts = [line.replace("\\n", "\n").strip() for line in raw.splitlines()]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise TextimgError(f"text file has no non-empty lines: {path}")
    return texts


def pick_text(rng: np.random.Generator, corpus: Sequence[str] | None) -> str:
    """A text for one sample: from the user's corpus when given, else the embedded source."""
    if corpus:
        return corpus[int(rng.integers(len(corpus)))]
    return english_text(rng)
