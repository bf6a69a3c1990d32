"""Parity fixture for `glyphcontrol`: GlyphControl's own `ocr_acc.py` counters on the shared cases.

    /tmp/parity-venv/bin/python benchmarks/protocol_parity/glyphcontrol.py GITDIR

GITDIR: a fetched AIGText/GlyphControl-release (needs numpy and Levenshtein in the venv).
`ocr_acc.py` is executed with easyocr and PIL stubbed; each case's transcript becomes EasyOCR
results, one (box, text, confidence) per non-empty stripped line, textimg's mapping. Per-image
values come from fresh counters, the aggregate from one set of counters over every case, as
`ocr_acc.py` and `test_on_benchmark.py` accumulate them.
"""

from __future__ import annotations

import sys
import types

from cases import cases
from official import head_commit, official_source, stub_modules, write_fixture

SCRIPT = "ocr_acc.py"
COUNTERS = {
    "acc": ("OCR_EM_Counter", "ocr_acc_em_rate"),
    "acc_ci": ("OCR_EM_without_capitalization_Counter", "ocr_acc_em_rate"),
    "ld": ("OCR_Levenshtein_Distance", "ocr_lev_avg"),
}


def easyocr_result(transcript: str) -> list[tuple]:
    return [(None, line.strip(), 1.0) for line in transcript.split("\n") if line.strip()]


def counted(module: types.ModuleType, pairs: list[tuple[str, list]]) -> dict[str, float]:
    """Every counter fed `pairs` of (text, ocr_result), as the benchmark loop feeds them."""
    values = {}
    for name, (counter_class, attribute) in COUNTERS.items():
        counter = getattr(module, counter_class)()
        for text, result in pairs:
            counter.add_text(text)
            counter.update(text, result)
        values[name] = float(getattr(counter, attribute))
    return values


def main(gitdir: str) -> None:
    commit = head_commit(gitdir)
    stub_modules("easyocr", "PIL", **{"PIL.Image": None})
    module = types.ModuleType("ocr_acc")
    exec(compile(official_source(gitdir, commit, SCRIPT), SCRIPT, "exec"), module.__dict__)
    rows, pairs = [], []
    for case in cases():
        pair = (case["target"]["text"], easyocr_result(case["transcript"]))
        pairs.append(pair)
        official = counted(module, [pair])
        if not pair[1]:
            del official["ld"]  # the counter skips an image without boxes
        rows.append({**case, "official": official})
    aggregate = counted(module, pairs)
    name = f"AIGText/GlyphControl-release@{commit} {SCRIPT}"
    print(write_fixture("glyphcontrol", name, rows, aggregate))


if __name__ == "__main__":
    main(sys.argv[1])
