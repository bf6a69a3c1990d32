"""TextAtlasEval parity: run TextAtlas's `evaluation/cal_ocr.py` (word accuracy and F1 with the
fuzzy match) and `cal_ocr_cer.py` (CER) on the shared cases.

Each transcript becomes the text `OCREvaluatorFuzzy.detect_text` builds from PaddleOCR's lines
(non-empty lines stripped and joined by " "); the targets are `raw_text`. The aggregate is
`cal_ocr_hf`'s pooled accuracy and F1 and `process_data`'s mean CER.

Usage: /tmp/parity-venv/bin/python benchmarks/protocol_parity/textatlas.py GITDIR
(needs fuzzywuzzy, python-Levenshtein, tqdm).
"""

from __future__ import annotations

import sys

from cases import text_cases
from official import head_commit, load, write_text_fixture

SCRIPTS = "evaluation/cal_ocr.py + evaluation/cal_ocr_cer.py"


def detect_text(transcript: str) -> str:
    """What `detect_text` returns for PaddleOCR lines holding the transcript's lines."""
    return " ".join(line.strip() for line in transcript.split("\n") if line)


def main(gitdir: str) -> None:
    cer_module = load(gitdir, "evaluation/cal_ocr_cer.py", "cal_ocr_cer")
    ocr = load(gitdir, "evaluation/cal_ocr.py", "cal_ocr_official", stubs=("paddleocr", "cv2"))
    evaluator = ocr.OCREvaluatorFuzzy.__new__(ocr.OCREvaluatorFuzzy)  # no PaddleOCR model
    evaluator.threshold = 80
    entries, scored = [], []
    for case in text_cases():
        read = detect_text(case["transcript"])
        metrics = evaluator.compute_metrics(case["text"], read)
        entries.append({"ground_truth": case["text"], "ocr_text": read, "metrics": metrics})
        _, cer = cer_module.calculate_metrics(case["text"], read)
        scored.append({name: float(metrics[name]) for name in ("accuracy", "precision", "f1")})
        scored[-1]["cer"] = float(cer)
        for name in ("correct_words", "predicted_words", "ground_truth_words"):
            scored[-1][name] = metrics[name]
    correct = sum(entry["metrics"]["correct_words"] for entry in entries)
    predicted = sum(entry["metrics"]["predicted_words"] for entry in entries)
    total = sum(entry["metrics"]["ground_truth_words"] for entry in entries)
    accuracy = correct / total * 100
    precision = correct / predicted * 100
    _, _, average_cer = cer_module.process_data(entries)
    aggregate = {
        "accuracy": accuracy,
        "f1": 2 * precision * accuracy / (precision + accuracy),
        "cer": average_cer,
    }
    code = f"CSU-JPG/TextAtlas@{head_commit(gitdir)} {SCRIPTS}"
    print(write_text_fixture("textatlas", code, scored, aggregate), aggregate)


if __name__ == "__main__":
    main(sys.argv[1])
