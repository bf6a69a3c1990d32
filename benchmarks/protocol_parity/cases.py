"""The (target, transcript) cases every protocol's parity fixture is scored on.

Deterministic and small: each case is one way a scorer can go wrong (empty reads, case,
punctuation, repeats, extra words, several regions and lines, non-ASCII, whitespace), so the
official code and textimg disagree on a fixture row exactly where they would in a real run.
"""

from __future__ import annotations

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
    """Every case as {"key", "target": {"text", "regions"}, "transcript"}, keys `case_00`..."""
    return [
        {
            "key": f"case_{index:02d}",
            "target": {"text": text, "regions": list(regions)},
            "transcript": transcript,
        }
        for index, (text, regions, transcript) in enumerate(_BASE)
    ]
