"""Each protocol reproduces its benchmark's official scoring: per-item metrics and aggregate
match the official code's output recorded in tests/fixtures/protocols/<name>.json (written by
benchmarks/protocol_parity/<name>.py), and each reads its benchmark's own prompt file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from textimg.eval.protocols import Target, get_protocol

FIXTURES = Path(__file__).parent / "fixtures" / "protocols"
PARITY_FILES = sorted(
    path for path in FIXTURES.glob("*.json") if "cases" in json.loads(path.read_text("utf-8"))
)


def assert_close(ours: float, official: float | None, where: str) -> None:
    """Equal to 1e-6; an official null (the official code fails there) is textimg's NaN."""
    if official is None:
        assert math.isnan(ours), where
    else:
        assert ours == pytest.approx(official, abs=1e-6), where


@pytest.mark.parametrize("fixture", PARITY_FILES, ids=lambda path: path.stem)
def test_matches_official_code(fixture: Path) -> None:
    document = json.loads(fixture.read_text("utf-8"))
    protocol = get_protocol(document["protocol"])
    assert len(document["cases"]) >= 50
    assert protocol.official_code.split()[0] == document["official_code"].split()[0]
    items = []
    for case in document["cases"]:
        target = Target(case["target"]["text"], tuple(case["target"]["regions"]))
        scores = protocol.score_item(target, case["transcript"])
        items.append(scores)
        for metric, official in case["official"].items():
            assert_close(scores[metric], official, f"{case['key']} {metric}")
    aggregate = protocol.aggregate(items)
    for metric, official in document["aggregate"].items():
        assert_close(aggregate[metric], official, f"aggregate {metric}")
    assert set(protocol.metrics) <= set(aggregate)


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
