"""The (target, transcript) cases every protocol's parity fixture is scored on.

Deterministic and small: each case is one way a scorer can go wrong (empty reads, case,
punctuation, repeats, extra words, several regions and lines, non-ASCII, whitespace), so the
official code and textimg disagree on a fixture row exactly where they would in a real run.
Two lists, each the cases of one family of fixtures (`cases`, `text_cases`): every fixture
stays the one its official code produced, and a script regenerates exactly it.
"""

from __future__ import annotations

import random

Case = dict[str, object]

_BASE: list[tuple[str, tuple[str, ...], str]] = [
    # (target text, regions, transcript); the text of a regioned target is its regions joined
    ("hello", (), "hello"),
    ("hello", (), ""),
    ("hello", (), "Hello"),
    ("Hello", (), "hello"),
    ("HELLO", (), "hello"),
    ("hello world", (), "hello world"),
    ("hello world", (), "world hello"),
    ("hello world", (), "hello"),
    ("hello world", (), "hello world again"),
    ("hello world", (), "hello  world"),
    ("hello world", (), " hello world "),
    ("hello world", (), "hello\nworld"),
    ("hello world", (), "helo wrld"),
    ("hello, world!", (), "hello world"),
    ("hello, world!", (), "hello, world!"),
    ("don't stop", (), "dont stop"),
    ("don't stop", (), "don't stop"),
    ("the the cat", (), "the cat"),
    ("the cat", (), "the the cat"),
    ("the the cat", (), "the the cat"),
    ("ab c", (), "a bc"),
    ("ab c", (), "c ab"),
    ("OPEN 24 HOURS", (), "OPEN 24 HOURS"),
    ("OPEN 24 HOURS", (), "0PEN 24 H0URS"),
    ("$5 sale", (), "$5 sale"),
    ("$5 sale", (), "5 sale"),
    ("café", (), "café"),
    ("café", (), "cafe"),
    ("naïve façade", (), "naive facade"),
    ("东京", (), "东京"),
    ("东京", (), "東京"),
    ("北京欢迎你", (), "北京欢迎"),
    ("I ❤ NY", (), "I ❤ NY"),
    ("I ❤ NY", (), "I NY"),
    ("x", (), "x"),
    ("x", (), "y"),
    ("a", (), "aaaa"),
    ("", (), ""),
    ("", (), "noise"),
    ("line one\nline two", (), "line one\nline two"),
    ("line one\nline two", (), "line one line two"),
    ("line one\nline two", (), "line two\nline one"),
    ("line one\nline two", (), "line one"),
    ("line one\nline two", (), "line one\nline two\nline three"),
    ("  padded  ", (), "padded"),
    ("tab\there", (), "tab here"),
    ("mixed\tspace  text", (), "mixed space text"),
    ("SALE\n50% OFF", ("SALE", "50% OFF"), "SALE\n50% OFF"),
    ("SALE\n50% OFF", ("SALE", "50% OFF"), "50% OFF\nSALE"),
    ("SALE\n50% OFF", ("SALE", "50% OFF"), "SALE"),
    ("SALE\n50% OFF", ("SALE", "50% OFF"), "sale\n50% off"),
    ("SALE\n50% OFF", ("SALE", "50% OFF"), ""),
    ("Cafe\nOpen Daily\nfree wifi", ("Cafe", "Open Daily", "free wifi"), "Cafe\nOpen Daly\nfree"),
    ("Cafe\nOpen Daily\nfree wifi", ("Cafe", "Open Daily", "free wifi"), "Open Daily"),
    ("STOP\nSTOP", ("STOP", "STOP"), "STOP"),
    ("STOP\nSTOP", ("STOP", "STOP"), "STOP\nSTOP"),
    ("a very long sign text here", (), "a very long sign text here"),
    ("a very long sign text here", (), "a vary lomg sign txt"),
    ("Welcome to the Grand Opening", (), "Welcome to the Grand Openning"),
    ("Welcome to the Grand Opening", (), "welcome to the grand opening"),
    ("Ünïcödé", (), "Unicode"),
    ("hello", (), "hello\nhello"),
]


def cases() -> list[Case]:
    """The cases of the post, anytext, mario, glyphcontrol and cvtg2k fixtures, as {"key",
    "target": {"text", "regions"}, "transcript"}, keys `case_00`..."""
    return [
        {
            "key": f"case_{index:02d}",
            "target": {"text": text, "regions": list(regions)},
            "transcript": transcript,
        }
        for index, (text, regions, transcript) in enumerate(_BASE)
    ]


_TEXT_FIXED: list[tuple[str, tuple[str, ...], str]] = [
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


def text_cases() -> list[dict]:
    """The cases of the lex, textatlas, strict, oneig and longtext fixtures: {"key", "text",
    "regions", "transcript"}, the fixed ones, then seeded random ones (~60)."""
    rng = random.Random(20261207)
    rows = _TEXT_FIXED + [_random_case(rng) for _ in range(12)]
    return [
        {"key": f"{index:03d}", "text": text, "regions": list(regions), "transcript": transcript}
        for index, (text, regions, transcript) in enumerate(rows)
    ]
