"""OneIG-Bench parity: run OneIG-Benchmark's `scripts/text/text_score.py` `main()` end to end on
the shared cases, with its VLM answering each case's transcript.

A temporary working directory holds the official `scripts/text/text_utils.py` and a
`text_content.csv` (and `_zh`) in the benchmark's format (id, prompt, text_content as a list
literal); `Qwen2_5VLBatchInferencer`, `megfile` and the grid splitter are stubbed so that each
image id is one cell read as its transcript, and `save2csv` hands back the official per-prompt
[ED, CR, WAC] and the run's ED, CR, WAC and text score. The English and Chinese runs differ only
in the ED cap of the text score (100 and 50).

Usage: /tmp/parity-venv/bin/python benchmarks/protocol_parity/oneig.py GITDIR
(needs numpy, pandas).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from cases import text_cases
from official import head_commit, load, stub, write_text_fixture

SCRIPT = "scripts/text/text_score.py"
SAVED: dict[str, object] = {}


def write_inputs(gitdir: str, folder: Path) -> dict[str, str]:
    """The official text_utils.py and the case CSVs under `folder`; id -> transcript."""
    (folder / "scripts" / "text").mkdir(parents=True, exist_ok=True)
    source = subprocess.check_output(
        ["git", "-C", gitdir, "show", "HEAD:scripts/text/text_utils.py"]
    )
    (folder / "scripts" / "text" / "text_utils.py").write_bytes(source)
    for name in ("text_content.csv", "text_content_zh.csv"):
        with (folder / "scripts" / "text" / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["", "id", "prompt_en", "text_content"])
            for index, case in enumerate(text_cases()):
                texts = case["regions"] or case["text"].split("\n")
                writer.writerow([index, case["key"], "", str(list(texts))])
    return {case["key"]: case["transcript"] for case in text_cases()}


def stub_runtime(transcripts: dict[str, str], mode: str) -> None:
    """The VLM, storage and argument modules `text_score.py` imports, answering from cases."""
    utils = types.ModuleType("scripts.utils.utils")
    utils.parse_args = lambda: types.SimpleNamespace(
        mode=mode, model_names=["m"], image_grid=["1,1"], image_dirname="images"
    )
    utils.split_mxn_grid = lambda path, grid, cache: [path]
    utils.save2csv = lambda frame, path: SAVED.__setitem__(Path(path).name.split("_")[1], frame)
    utils.on_rm_error = None
    inference = types.ModuleType("scripts.utils.inference")

    class Reader:
        def __init__(self, model: str) -> None: ...

        def infer_ocr(self, paths: list[str], max_new_tokens: int) -> list[str]:
            return [transcripts[Path(path).name] for path in paths]

    inference.Qwen2_5VLBatchInferencer = Reader
    megfile = types.ModuleType("megfile")
    megfile.smart_glob = lambda pattern: [pattern.rstrip("*")]
    sys.modules.update(
        {"scripts.utils.utils": utils, "scripts.utils.inference": inference, "megfile": megfile}
    )
    stub("scripts.utils")


def run(gitdir: str, mode: str) -> tuple[object, object]:
    """One official run: (per-prompt frame, score frame)."""
    transcripts = write_inputs(gitdir, Path.cwd())
    stub_runtime(transcripts, mode)
    sys.path.insert(0, os.getcwd())
    text_score = load(gitdir, SCRIPT, f"oneig_text_score_{mode}")
    text_score.main()
    return SAVED["prompt"], SAVED["score"]


def main(gitdir: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="parity-"))
    os.chdir(folder)
    per_prompt, scores = run(gitdir, "EN")
    _, scores_zh = run(gitdir, "ZH")
    scored = []
    for case in text_cases():
        ed, cr, wac = per_prompt.loc[case["key"], "m"]
        scored.append({"ed": float(ed), "cr": float(cr), "wac": float(wac)})
    aggregate = {
        name: float(scores.loc["m", column])
        for name, column in (
            ("ed", "ED"),
            ("cr", "CR"),
            ("wac", "WAC"),
            ("text_score", "text score"),
        )
    }
    aggregate["text_score_zh"] = float(scores_zh.loc["m", "text score"])
    code = (
        f"OneIG-Bench/OneIG-Benchmark@{head_commit(gitdir)} {SCRIPT} + scripts/text/text_utils.py"
    )
    print(write_text_fixture("oneig", code, scored, aggregate), aggregate)


if __name__ == "__main__":
    main(sys.argv[1])
