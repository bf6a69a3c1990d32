"""STRICT parity: run STRICT-Bench's `ocr/core.py` `evaluate_document_image` (with its Tesseract
call answering the transcript) and `ocr/main.py`'s `bootstrap_statistics` on the shared cases.

`ocr/core.py` imports `ocr/ned.py` relatively, so both are loaded as a package; `ocr/main.py`
imports `core_clip` (the CLIP tokenizer, for the truncated scores only), which is stubbed.
The bootstrap is unseeded, so the fixture keeps its means only.

Usage: /tmp/parity-venv/bin/python benchmarks/protocol_parity/strict.py GITDIR
(needs numpy, jiwer, python-Levenshtein).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys
import tempfile
from pathlib import Path

from cases import text_cases
from official import head_commit, load, stub, write_text_fixture

SCRIPTS = "ocr/core.py + ocr/ned.py + ocr/main.py"
NAMES = {"ned": "strict_ned", "wer": "strict_wer", "cer": "strict_cer"}
NAMES["similarity"] = "strict_sequence_similarity"


def load_core(gitdir: str):
    """`ocr/` as a package `strict_ocr` holding the official core.py and ned.py."""
    package = Path(tempfile.mkdtemp(prefix="parity-")) / "strict_ocr"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("core.py", "ned.py"):
        source = subprocess.check_output(["git", "-C", gitdir, "show", f"HEAD:ocr/{name}"])
        (package / name).write_bytes(source)
    sys.path.insert(0, str(package.parent))
    for name in ("pytesseract", "PIL"):
        stub(name)
    return importlib.import_module("strict_ocr.core")


def main(gitdir: str) -> None:
    core = load_core(gitdir)
    stub("core_clip")
    main_module = load(gitdir, "ocr/main.py", "strict_main")
    scored = []
    for case in text_cases():
        core.extract_text_from_image = lambda path, lang, psm, read=case["transcript"]: read
        with contextlib.redirect_stdout(io.StringIO()):
            result = core.evaluate_document_image(case["text"], "image.png")
        scored.append({ours: float(result[f"{theirs} (Full)"]) for ours, theirs in NAMES.items()})
    with contextlib.redirect_stdout(io.StringIO()):
        aggregate = {
            name: main_module.bootstrap_statistics([row[name] for row in scored])["mean"]
            for name in NAMES
        }
    code = f"tianyu-z/STRICT-Bench@{head_commit(gitdir)} {SCRIPTS}"
    print(write_text_fixture("strict", code, scored, aggregate), aggregate)


if __name__ == "__main__":
    main(sys.argv[1])
