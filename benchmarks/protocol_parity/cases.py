"""The (target, transcript) cases every parity fixture is scored on: what breaks scorers (empty
reads, case, punctuation, repeats, extra words, several regions and lines, accents, CJK, emoji,
empty targets, odd whitespace), generated deterministically so fixtures are reproducible."""

from __future__ import annotations

import random

FIXED: list[tuple[str, tuple[str, ...], str]] = [
    ("HELLO", (), "HELLO"),
    ("HELLO", (), ""),
    ("HELLO", (), "hello"),
    ("Hello World", (), "hello world"),
    ("Hello, World!", (), "Hello World"),
    ("Hello World", (), "Hello, World!"),
    ("OPEN OPEN OPEN", (), "OPEN"),
    ("OPEN", (), "OPEN OPEN OPEN"),
    ("big sale today", (), "big huge sale today now"),
    ("big sale today", (), "today sale big"),
    ("COFFEE\nSHOP", ("COFFEE", "SHOP"), "COFFEE\nSHOP"),
    ("COFFEE\nSHOP", ("COFFEE", "SHOP"), "SHOP\nCOFFEE"),
    ("COFFEE\nSHOP", ("COFFEE", "SHOP"), "COFFEE SHOP"),
    ("COFFEE\nSHOP", ("COFFEE", "SHOP"), "COFFE"),
    ("Grand Opening\nFree Entry", ("Grand Opening", "Free Entry"), "Grand Openin\nFree Entr"),
    ("line one\nline two\nline three", (), "line one\nline two\nline three"),
    ("line one\nline two\nline three", (), "line one line two"),
    ("Café Crème", (), "Café Crème"),
    ("Café Crème", (), "Cafe Creme"),
    ("naïve façade", (), "naive facade"),
    ("Straße", (), "Strasse"),
    ("欢迎光临", (), "欢迎光临"),
    ("欢迎光临", (), "欢迎光"),
    ("欢迎光临", (), "光临欢迎"),
    ("春节快乐\n万事如意", ("春节快乐", "万事如意"), "春节快乐\n万事如"),
    ("東京 Tokyo", (), "東京 Tokyo"),
    ("I ❤ NY", (), "I ❤ NY"),
    ("I ❤ NY", (), "I NY"),
    ("party 🎉 time", (), "party time"),
    ("", (), ""),
    ("", (), "stray text"),
    ("  padded  text  ", (), "padded text"),
    ("tab\tseparated", (), "tab separated"),
    ("double  space", (), "double space"),
    ("HELLO", (), "  HELLO  "),
    ("HELLO", (), "HELLO\n\n"),
    ("HELLO WORLD", (), "HELLO\n\nWORLD"),
    ("HELLO WORLD", (), "HELLO   WORLD"),
    ("50% OFF!", (), "50% OFF"),
    ("50% OFF!", (), "5O% 0FF!"),
    ("don't stop", (), "dont stop"),
    ("e-mail", (), "email"),
    ("A", (), "B"),
    ("A", (), "A"),
    ("abcdefghij", (), "abcdefghik"),
    ("No text recognized.", (), "No text recognized."),
    ("SALE", (), "SALE\nNo text recognized."),
    ("SALE", (), "addCriterion SALE"),
    ("Communicate\nExecute", ("Communicate", "Execute"), "COMMUNICAte\nEXECUTE now"),
    ("Alpha\nBeta\nGamma", ("Alpha", "Beta", "Gamma"), "Alpha Beta Gamma Delta"),
]


def _random_case(rng: random.Random) -> tuple[str, tuple[str, ...], str]:
    """A target of a few dictionary-like words and a transcript with typos, drops and swaps."""
    words = ["market", "fresh", "bread", "daily", "river", "night", "club", "open", "late", "tea"]
    regions = tuple(
        " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        for _ in range(rng.randint(1, 3))
    )
    read = []
    for region in regions:
        kept = [w for w in region.split() if rng.random() > 0.2]
        kept = [w[:-1] + "x" if rng.random() < 0.3 else w for w in kept]
        if rng.random() < 0.3:
            kept = [w.upper() for w in kept]
        read.append(" ".join(kept))
    return "\n".join(regions), regions, "\n".join(read)


def cases() -> list[dict]:
    """~60 cases: {"key", "text", "regions", "transcript"}; the fixed ones, then seeded random."""
    rng = random.Random(20261207)
    rows = FIXED + [_random_case(rng) for _ in range(12)]
    return [
        {"key": f"{index:03d}", "text": text, "regions": list(regions), "transcript": transcript}
        for index, (text, regions, transcript) in enumerate(rows)
    ]
