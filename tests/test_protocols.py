"""Each protocol against its benchmark's official code (fixtures written by
benchmarks/protocol_parity/), and each protocol's reader of its benchmark's prompt file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from textimg.eval.protocols import Target, get_protocol

FIXTURES = Path(__file__).parent / "fixtures" / "protocols"
PARITY_FILES = sorted(
    path for path in FIXTURES.glob("*.json") if "protocol" in json.loads(path.read_text("utf-8"))
)


def assert_close(ours: float, official: float | None, where: str) -> None:
    """Equal to 1e-6; an official null (the official code fails there) is textimg's NaN."""
    if official is None:
        assert math.isnan(ours), where
    else:
        assert ours == pytest.approx(official, abs=1e-6), where


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
            assert_close(item[name], value, f"{case['key']} {name}")
        skipped = official_names - set(official)
        assert not skipped & set(item), (case["key"], "scored what the official code skips")
    aggregate = protocol.aggregate(items)
    for name, value in fixture["aggregate"].items():
        assert_close(aggregate[name], value, f"aggregate {name}")
    assert set(protocol.metrics) <= set(aggregate)


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


def read(name: str, file: str) -> list[tuple[str, str, tuple[str, ...]]]:
    protocol = get_protocol(name)
    assert protocol.read_prompts is not None
    prompts = protocol.read_prompts(FIXTURES / file)
    return [(p.key, p.target.text, p.target.regions) for p in prompts]


def test_lex_reads_its_evaluation_json() -> None:
    assert read("lex", "lex_prompts.json") == [
        ("0000", "Communicate\nExecute", ("Communicate", "Execute")),
        ("0001", "OPEN", ("OPEN",)),
    ]


def test_textatlas_reads_its_json_and_keys_images_by_whole_name() -> None:
    assert read("textatlas", "textatlas_prompts.json") == [
        ("styledtextsynth_00012", "Summer Sale", ()),
        ("slide_7", "Quarterly Report 2024", ()),
    ]
    assert get_protocol("textatlas").image_key("slide_7") == ("slide_7", 0)


def test_strict_reads_its_text_data_json_and_a_folder_of_ground_truths(tmp_path: Path) -> None:
    assert read("strict", "strict_prompts.json") == [
        ("989186", "Ceftriaxone, sold under the brand name Rocephin, is an antibiotic.", ()),
        ("12", "Le café est prêt.", ()),
    ]
    (tmp_path / "memo_2.txt").write_text("Line one\nLine two", encoding="utf-8")
    prompts = get_protocol("strict").read_prompts(tmp_path)
    assert [(p.key, p.target.text) for p in prompts] == [("memo_2", "Line one\nLine two")]
    assert get_protocol("strict").image_key("memo_2") == ("memo_2", 0)


def test_oneig_reads_its_csv_list_literals() -> None:
    texts = ("The Impact of 5G Technology", "Telecom Industry Report, 2025")
    assert read("oneig", "oneig_prompts.csv") == [
        ("000", "\n".join(texts), texts),
        ("001", "Don't Panic", ("Don't Panic",)),
    ]


def test_longtext_reads_its_jsonl_and_names_images_by_prompt_id() -> None:
    assert read("longtext", "longtext_prompts.jsonl") == [
        ("0", "FRESH BREWS\nSince 1998", ("FRESH BREWS", "Since 1998")),
        ("17", "每日新鲜烘焙", ("每日新鲜烘焙",)),
    ]
    assert get_protocol("longtext").image_key("017_3") == ("17", 3)


def test_longtext_corrected_filter_drops_every_hallucination_keyword() -> None:
    scores = get_protocol("longtext").score_item(Target("addCriterion"), "addCriterion")
    assert scores["text_accuracy"] == 1.0  # the official filter leaves this keyword in
    assert scores["text_accuracy_clean"] == 0.0


def test_strict_interval_is_reproducible_and_brackets_the_mean() -> None:
    protocol = get_protocol("strict")
    items = [protocol.score_item(Target("abc def"), read) for read in ("abc def", "abd", "")]
    first, second = protocol.aggregate(items), protocol.aggregate(items)
    assert first == second
    assert first["cer_ci_low"] <= first["cer"] <= first["cer_ci_high"]
