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
