"""LongText-Bench parity: run X-Omni's `textbench/evaluate_text_reward.py` hallucination filter
and `textbench/summary_scores.py` on the shared cases.

Each transcript is passed through the official `clean_and_remove_hallucinations` (the reader
itself is stubbed) and written, with the case's texts as `ocr_gt`, as the results JSONL
`summary_scores.py` reads. A case runs in `zh` mode when its texts hold a CJK ideograph, else
`en`. Per-item values come from one official run per case (null where the official script
divides by zero on an empty target); the aggregate from one run per mode over the cases that
do not fail, its matched and target word counts pooled over both runs.

Usage: /tmp/parity-venv/bin/python benchmarks/protocol_parity/longtext.py GITDIR (needs tqdm).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import tempfile
from pathlib import Path

from cases import text_cases
from official import head_commit, load, stub, write_text_fixture

SCRIPTS = "textbench/evaluate_text_reward.py + textbench/summary_scores.py"
CHINESE = re.compile("[\u4e00-\u9fff]")


def texts_of(case: dict) -> list[str]:
    return case["regions"] or [case["text"]]


def summarize(gitdir: str, rows: list[dict], mode: str) -> list[dict] | None:
    """One official `summary_scores.py` run: its per-row results, or None where it fails."""
    folder = Path(tempfile.mkdtemp(prefix="parity-"))
    results = folder / "results_in.jsonl"
    results.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    sys.argv = ["summary_scores.py", str(results), "--mode", mode]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            load(gitdir, "textbench/summary_scores.py", f"summary_{folder.name}")
    except ZeroDivisionError:
        return None
    lines = (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def main(gitdir: str) -> None:
    for name in ("torch", "torch.distributed", "transformers", "qwen_vl_utils"):
        stub(name)
    reader = load(gitdir, "textbench/evaluate_text_reward.py", "longtext_reader")
    scored, groups = [], {"en": [], "zh": []}
    for case in text_cases():
        row = {"ocr_gt": texts_of(case)}
        row["ocr_results"] = reader.clean_and_remove_hallucinations(case["transcript"])
        mode = "zh" if CHINESE.search(" ".join(texts_of(case))) else "en"
        result = summarize(gitdir, [row], mode)
        if result is None:
            scored.append({"text_accuracy": None, "matched_words": 0, "target_words": 0})
            continue
        groups[mode].append(row)
        scored.append(
            {
                "text_accuracy": result[0]["text_accuray"],
                "matched_words": result[0]["match_word_count"],
                "target_words": result[0]["gt_word_count"],
            }
        )
    pooled = [row for mode, rows in groups.items() for row in summarize(gitdir, rows, mode)]
    matched = sum(row["match_word_count"] for row in pooled)
    aggregate = {"text_score": matched / sum(row["gt_word_count"] for row in pooled)}
    code = f"X-Omni-Team/X-Omni@{head_commit(gitdir)} {SCRIPTS}"
    print(write_text_fixture("longtext", code, scored, aggregate), aggregate)


if __name__ == "__main__":
    main(sys.argv[1])
