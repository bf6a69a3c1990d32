"""Fixture for `cvtg2k`: CVTG-2K has no official scorer (NJU-PCALab/TextCrafter ships generation
scripts only), so the "official" values come from this independent implementation of the
definition textimg states, checked first against a worked example computed by hand.

    /tmp/parity-venv/bin/python benchmarks/protocol_parity/cvtg2k.py

Definition: words lowercased and whitespace-split (nothing read is one empty word); Word
Accuracy = share of target words among the read words; NED = mean over target words of
1 - Lev / (max(len) + 1e-5) to the read word difflib ranks closest (highest ratio, ties to the
larger string); images averaged, an image whose target has no words skipped.
"""

from __future__ import annotations

from difflib import SequenceMatcher

import Levenshtein
from cases import cases
from official import write_fixture

WORKED = {
    "key": "worked_example",
    "target": {"text": "Grand Opening\nSale", "regions": ["Grand Opening", "Sale"]},
    "transcript": "GRAND 0pening",
}
# By hand: words grand, opening, sale against grand, 0pening. Read: grand only -> 1/3.
# Closest: grand -> grand (0 edits); opening -> 0pening (1 edit of 7); sale -> grand (ratio
# 2/9 against 2/11; 4 edits: only "a" is shared, so at least 5 - 1).
WORKED_OFFICIAL = {"word_acc": 1 / 3, "ned": (1 + (1 - 1 / 7.00001) + (1 - 4 / 5.00001)) / 3}


def closest(word: str, read: list[str]) -> str:
    return max((SequenceMatcher(None, candidate, word).ratio(), candidate) for candidate in read)[1]


def score(text: str, transcript: str) -> dict[str, float]:
    truth, read = text.lower().split(), transcript.lower().split() or [""]
    if not truth:
        return {}
    similarities = [
        1 - Levenshtein.distance(word, near) / (max(len(word), len(near)) + 1e-5)
        for word, near in ((word, closest(word, read)) for word in truth)
    ]
    hits = sum(word in read for word in truth)
    return {"word_acc": hits / len(truth), "ned": sum(similarities) / len(truth)}


def main() -> None:
    computed = score(WORKED["target"]["text"], WORKED["transcript"])
    assert all(abs(computed[name] - WORKED_OFFICIAL[name]) < 1e-12 for name in computed), computed
    rows = [
        {**case, "official": score(case["target"]["text"], case["transcript"])} for case in cases()
    ]
    rows.append({**WORKED, "official": WORKED_OFFICIAL})
    aggregate = {}
    for name in ("word_acc", "ned"):
        values = [row["official"][name] for row in rows if name in row["official"]]
        aggregate[name] = sum(values) / len(values)
    code = "no official code: definition from the paper/README (NJU-PCALab/TextCrafter)"
    print(write_fixture("cvtg2k", code, rows, aggregate))


if __name__ == "__main__":
    main()
