"""LeX-Bench parity: run LeX-Art's `evaluation/cal_pned_and_recall.py` on the shared cases.

Each transcript becomes the PaddleOCR JSON LeX-Art reads (one `[box, [text, confidence]]` per
non-empty line) and each target its `text` list, written as a LeX-Bench result file and read
back through the official `collect_data`. Where the official Recall divides by zero (no target
text) the case records null and the aggregate leaves it out, as textimg's NaN does.

Usage: /tmp/parity-venv/bin/python benchmarks/protocol_parity/lex.py GITDIR
(needs numpy and scipy).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from cases import text_cases
from official import head_commit, load, write_text_fixture

SCRIPT = "evaluation/cal_pned_and_recall.py"
BOX = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]


def result_row(case: dict) -> dict:
    """One LeX-Bench result entry: the target texts and the transcript as OCR detections."""
    detections = [[BOX, [line, 0.99]] for line in case["transcript"].split("\n") if line]
    texts = case["regions"] or [line for line in case["text"].split("\n") if line]
    return {
        "prompt_idx": case["key"],
        "text": texts,
        "simple_image_ocr_results": detections,
        "enhanced_image_ocr_results": detections,
    }


def main(gitdir: str) -> None:
    lex = load(gitdir, SCRIPT, "lex_official")
    path = Path(tempfile.mkdtemp()) / "lex_bench_results.json"
    path.write_text(json.dumps([result_row(case) for case in text_cases()]), encoding="utf-8")
    reads, _, targets = lex.collect_data(str(path))
    assert reads, "collect_data read nothing"
    scored = []
    for target, read in zip(targets, reads, strict=True):
        try:
            recall = lex.calculate_recall(target, read)
        except ZeroDivisionError:
            recall = None
        scored.append({"pned": float(lex.matching_based_nled(target, read)), "recall": recall})
    recalls = [row["recall"] for row in scored if row["recall"] is not None]
    aggregate = {
        "pned": sum(row["pned"] for row in scored) / len(scored),
        "recall": sum(recalls) / len(recalls),
    }
    code = f"zhaoshitian/LeX-Art@{head_commit(gitdir)} {SCRIPT}"
    print(write_text_fixture("lex", code, scored, aggregate), aggregate)


if __name__ == "__main__":
    main(sys.argv[1])
