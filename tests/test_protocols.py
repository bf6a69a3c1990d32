"""Each protocol against its benchmark's official code (fixtures written by
benchmarks/protocol_parity/), and each protocol's reader of its benchmark's prompt file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textimg.eval.protocols import Target, get_protocol

FIXTURES = Path(__file__).parent / "fixtures" / "protocols"
PARITY_FILES = sorted(
    path for path in FIXTURES.glob("*.json") if "protocol" in json.loads(path.read_text("utf-8"))
)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", PARITY_FILES, ids=lambda path: path.stem)
def test_matches_official_code(path: Path) -> None:
    fixture = _load(path)
    protocol = get_protocol(fixture["protocol"])
    assert len(fixture["cases"]) >= 50
    assert protocol.official_code.split()[0] in fixture["official_code"] or (
        protocol.official_code.startswith("no official code")
    )
    official_names = {name for case in fixture["cases"] for name in case["official"]}
    items = []
    for case in fixture["cases"]:
        target = Target(case["target"]["text"], tuple(case["target"]["regions"]))
        item = protocol.score_item(target, case["transcript"])
        items.append(item)
        official = case["official"]
        for name, value in official.items():
            assert item[name] == pytest.approx(value, abs=1e-6), (case["key"], name)
        skipped = official_names - set(official)
        assert not skipped & set(item), (case["key"], "scored what the official code skips")
    aggregate = protocol.aggregate(items)
    for name, value in fixture["aggregate"].items():
        assert aggregate[name] == pytest.approx(value, abs=1e-6), name


PROMPTS = FIXTURES / "prompts"


def _read(name: str, file: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    read = get_protocol(name).read_prompts
    assert read is not None
    rows = read(PROMPTS / file)
    return [(row.key, row.prompt, row.target.text, row.target.regions) for row in rows]


def test_anytext_reads_test1k_json() -> None:
    assert _read("anytext", "anytext_test1k.json") == [
        ("000123", "a shop sign that reads   and  ", "OPEN\nJoe's Cafe", ("OPEN", "Joe's Cafe")),
        ("000124", "a plain wall", "", ()),
    ]
    assert get_protocol("anytext").image_key("000123_3") == ("000123", 3)


def test_anytext_cuts_lines_as_get_item_does() -> None:
    protocol = get_protocol("anytext")
    item = protocol.score_item(Target("", ("a" * 25,)), "a" * 20)
    assert item["sen_acc"] == 1.0
    assert protocol.score_item(Target(""), "anything") == {"lines": 0.0}


def test_mario_reads_quoted_keywords() -> None:
    assert _read("mario", "LAIONEval4000.txt") == [
        (
            "LAIONEval4000_0",
            "a poster that says 'Grand Opening' in red",
            "Grand Opening",
            ("Grand Opening",),
        ),
        ("LAIONEval4000_1", "a sign 'don't stop' on a road", "don", ("don",)),
        ("LAIONEval4000_2", "no quoted text here", "", ()),
    ]
    image_key = get_protocol("mario").image_key
    assert image_key("textdiffuser_LAIONEval4000_12_3") == ("LAIONEval4000_12", 3)


def test_glyphcontrol_reads_one_text_a_line() -> None:
    assert _read("glyphcontrol", "all_unigram_top_1000_100.txt") == [
        ("assembly", 'A sign that says "assembly"', "assembly", ()),
        ("New York", 'A sign that says "New York"', "New York", ()),
        ("william", 'A sign that says "william"', "william", ()),
    ]
    assert get_protocol("glyphcontrol").image_key("New York_2") == ("New York", 2)


def test_glyphcontrol_ld_all_counts_images_without_text() -> None:
    protocol = get_protocol("glyphcontrol")
    items = [
        protocol.score_item(Target("hello"), ""),
        protocol.score_item(Target("hello"), "hallo"),
    ]
    assert protocol.aggregate(items)["ld"] == 1.0
    assert protocol.aggregate(items)["ld_all"] == 3.0


def test_cvtg2k_reads_quoted_sentences() -> None:
    prompt = "A diner at night with 'Joe's Diner' on the roof and 'OPEN 24/7' on the door."
    assert _read("cvtg2k", "cvtg_2.json") == [
        ("0", prompt, "Joe's Diner\nOPEN 24/7", ("Joe's Diner", "OPEN 24/7"))
    ]
