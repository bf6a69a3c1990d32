"""Parity fixture for `mario`: MARIO-Eval's own `ocr_eval.py`, run whole, on the shared cases.

    /tmp/parity-venv/bin/python benchmarks/protocol_parity/mario.py GITDIR

GITDIR: a fetched microsoft/unilm. Each case becomes a prompt line of LAIONEval4000.txt (its
regions, else its text, single-quoted) and an OCR result file holding the transcript's words one
a line, for each of the four methods the script divides by. The script runs as published with
its '/path/to/' placeholder pointed at that tree; per-image values come from its `get_p_r_acc`,
the aggregate from its `results`. The fixture target is the words its `get_key_words` took from
the prompt line, so apostrophes inside quotes show the official split.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from cases import cases
from official import head_commit, official_source, write_fixture

SCRIPT = "textdiffuser/eval/ocr_eval.py"
DATASETS = [
    "ChineseDrawText",
    "DrawBenchText",
    "DrawTextCreative",
    "LAIONEval4000",
    "OpenLibraryEval500",
    "TMDBEval500",
]
METHODS = ["stablediffusion", "textdiffuser", "controlnet", "deepfloyd"]


def prompt_line(case: dict) -> str:
    parts = case["target"]["regions"] or [case["target"]["text"]]
    return "a sign with " + " and ".join(f"'{part}'" for part in parts).replace("\n", " ")


def build_tree(root: Path, rows: list[dict]) -> None:
    for dataset in DATASETS:
        folder = root / "MARIOEval" / dataset
        folder.mkdir(parents=True)
        lines = [prompt_line(case) for case in rows] if dataset == "LAIONEval4000" else []
        (folder / f"{dataset}.txt").write_text("".join(f"{line}\n" for line in lines), "utf-8")
    results = root / "MaskTextSpotterV3" / "tools" / "ocr_result"
    results.mkdir(parents=True)
    for index, case in enumerate(rows):
        words = case["transcript"].split()
        for method in METHODS:
            text = "".join(f"{word}\n" for word in words)
            (results / f"{method}_LAIONEval4000_{index}_0").write_text(text, "utf-8")


def main(gitdir: str) -> None:
    commit = head_commit(gitdir)
    rows = cases()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_tree(root, rows)
        source = official_source(gitdir, commit, SCRIPT).replace("/path/to/", f"{root}/")
        namespace: dict = {"__name__": "ocr_eval"}
        exec(compile(source, SCRIPT, "exec"), namespace)
    fixture_rows = []
    for index, case in enumerate(rows):
        truth = namespace["get_key_words"](prompt_line(case).strip())
        read = [f"{word}\n" for word in case["transcript"].split()]
        gold = namespace["gts"]["LAIONEval4000"][index]
        precision, recall, acc = namespace["get_p_r_acc"]("textdiffuser", read, gold)
        target = {"text": " ".join(truth), "regions": []}
        official = {"precision": precision, "recall": recall, "acc": float(acc)}
        fixture_rows.append({**case, "target": target, "official": official})
    result = namespace["results"]["textdiffuser"]
    aggregate = {name: float(result[name]) for name in ("p", "r", "f", "acc")}
    aggregate["precision"], aggregate["recall"] = aggregate.pop("p"), aggregate.pop("r")
    print(write_fixture("mario", f"microsoft/unilm@{commit} {SCRIPT}", fixture_rows, aggregate))


if __name__ == "__main__":
    main(sys.argv[1])
