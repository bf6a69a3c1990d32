"""Whether runs may sit side by side: only runs scored by the same protocol (name and version)
and the same reader (engine, its model versions and reading settings) are comparable.

A score is a property of (model, benchmark protocol, reader): MARIO-Eval's accuracy moved from
57.6 to 32.3 with the OCR engine alone (microsoft/unilm#1677). `compare.csv` (`eval`) and
`textimg compare` refuse to put runs that differ there in one table unless told to, and say which
run differs in what.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textimg.errors import TextimgError
from textimg.files import write_atomic

UNCHANGING_SETTINGS = ("batch_size",)
"""Reading settings that do not change a transcript (batching), left out of the comparison."""


def scored_with(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What a run was scored by: its protocol (or textimg's own metrics) and its reader."""
    protocol = summary.get("protocol")
    reader = dict(summary.get("ocr", {}))
    settings = {
        name: value
        for name, value in reader.get("settings", {}).items()
        if name not in UNCHANGING_SETTINGS
    }
    return {
        "protocol": f"{protocol['name']} v{protocol['version']}" if protocol else "textimg metrics",
        "reader": {
            "engine": reader.get("engine"),
            "version": reader.get("version"),
            "pipeline": reader.get("pipeline"),
            "settings": settings,
        },
    }


def check_comparable(summaries: Mapping[str, Mapping[str, Any]], allow_mixed: bool) -> None:
    """Refuse runs scored by different protocols or readers, naming each difference, unless
    `allow_mixed`."""
    if allow_mixed or len(summaries) < 2:
        return
    named = {name: scored_with(summary) for name, summary in summaries.items()}
    first_name, first = next(iter(named.items()))
    problems = []
    for name, scored in named.items():
        for part in ("protocol", "reader"):
            if scored[part] != first[part]:
                mine, theirs = json.dumps(scored[part]), json.dumps(first[part])
                problems.append(f"{name} was scored by {part} {mine}, {first_name} by {theirs}")
    if problems:
        raise TextimgError(
            "these runs are not comparable: "
            + "; ".join(problems)
            + ". Scores from different protocols or readers measure different things; pass "
            "--allow-mixed to put them side by side anyway"
        )


def compare_runs(folders: list[Path], out: Path, allow_mixed: bool) -> list[dict[str, Any]]:
    """One row per `score`/`eval` output folder (its summary.json): what scored it and its
    headline numbers (the protocol's aggregate, else textimg's means); written to `out`."""
    import pandas as pd

    summaries = {}
    for folder in folders:
        path = folder / "summary.json"
        if not path.is_file():
            raise TextimgError(f"{folder} holds no summary.json (a `score` or `eval` output)")
        summaries[str(folder)] = json.loads(path.read_text(encoding="utf-8"))
    check_comparable(summaries, allow_mixed)
    rows = []
    for name, summary in summaries.items():
        scored = scored_with(summary)
        row: dict[str, Any] = {"run": name, "protocol": scored["protocol"]}
        row["reader"] = f"{scored['reader']['engine']} {scored['reader']['version'] or ''}".strip()
        if "aggregate" in summary:
            row |= summary["aggregate"]
        else:
            row |= {k: v["mean"] for k, v in summary.items() if isinstance(v, dict) and "mean" in v}
        row["scored"] = summary.get("counts", {}).get("scored")
        rows.append(row)
    frame = pd.DataFrame(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda path: frame.to_csv(path, index=False))
    return rows
