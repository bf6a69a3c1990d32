"""AnyText-benchmark (Tuo et al. 2023): Sen.ACC and NED per ground-truth text line.

Official code: tyxsspa/AnyText `eval/eval_dgocr.py` (lines and their limits from
`eval/anytext_singleGPU.py` `load_data`/`get_item`). It crops each ground-truth line's polygon,
reads the crop with DAMO's ConvNeXt-Tiny recognizer and compares that reading with the line.

Transcript mapping: line k of the transcript ("\\n"-split, spaces at both ends stripped, as a
crop reading has none) is the reading of region k; a missing line reads as "". Regions are the
target's regions, else its text's lines; like `get_item`, only the first 20 lines count, each cut
to its first 20 characters. The benchmark's numbers are pooled over lines, not images.

NED quirk: the official NED compares recognizer-dictionary ids, and every character outside the
English dictionary (printable ASCII) maps to the id the space has, so "café" reads as "caf " and
"東京" equals "北京" there. `ned` keeps that (it is what published AnyText numbers mean);
`ned_unicode` compares the characters themselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from textimg.eval.protocols.base import BenchmarkPrompt, ItemScores, Protocol, Target

MAX_LINES = 20  # anytext_singleGPU.py max_lines
MAX_CHARS = 20  # anytext_singleGPU.py max_chars
PLACE_HOLDER = "*"  # the caption's mark for where a text goes; load_data replaces it by " "


def dictionary_ids(text: str) -> str:
    """`text` as the English recognizer dictionary sees it: printable ASCII kept, every other
    character the space (eval_dgocr.py's `char2id.get(m, len(chars) - 1)`, whose last id is the
    space the dictionary's `get_char_dict` appends)."""
    return "".join(char if " " <= char <= "~" else " " for char in text)


def line_similarity(reference: str, reading: str) -> float:
    """eval_dgocr.py `get_ld`: 1 - Lev / (max(len) + 1e-5), so two empty lines score 1."""
    distance = Levenshtein.distance(reference, reading)
    return 1 - distance / (max(len(reference), len(reading)) + 1e-5)


def ground_truth_lines(target: Target) -> list[str]:
    """The lines `get_item` scores: regions (else the text's lines), 20 at most, 20 chars each."""
    lines = list(target.regions) or (target.text.split("\n") if target.text else [])
    return [line[:MAX_CHARS] for line in lines[:MAX_LINES]]


def score_item(target: Target, transcript: str) -> ItemScores:
    """Per-image means over its lines, with the line count the pooled aggregate weights by."""
    lines = ground_truth_lines(target)
    if not lines:
        return {"lines": 0.0}
    readings = [line.strip() for line in transcript.split("\n")]
    readings += [""] * (len(lines) - len(readings))
    pairs = list(zip(lines, readings, strict=False))
    count = len(pairs)
    return {
        "lines": float(count),
        "sen_acc": sum(float(line == read) for line, read in pairs) / count,
        "ned": sum(
            line_similarity(dictionary_ids(line), dictionary_ids(read)) for line, read in pairs
        )
        / count,
        "ned_unicode": sum(line_similarity(line, read) for line, read in pairs) / count,
    }


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    """Means over every line of every image (eval_dgocr.py appends per line, then averages)."""
    total = sum(item["lines"] for item in items)
    return {
        name: sum(item.get(name, 0.0) * item["lines"] for item in items) / total if total else 0.0
        for name in ("sen_acc", "ned", "ned_unicode")
    }


def read_prompts(path: Path) -> list[BenchmarkPrompt]:
    """test1k.json: `data_list` rows of `img_name`, `caption` and `annotations` (`text`,
    `polygon`, `valid`); as `load_data`, annotations without a polygon or marked invalid are
    dropped, and the key is `img_name` up to its first dot."""
    rows = json.loads(path.read_text(encoding="utf-8"))["data_list"]
    prompts = []
    for row in rows:
        texts = tuple(
            annotation["text"]
            for annotation in row.get("annotations", [])
            if len(annotation["polygon"]) > 0 and annotation.get("valid", True) is not False
        )
        prompts.append(
            BenchmarkPrompt(
                key=row["img_name"].split(".")[0],
                prompt=row["caption"].replace(PLACE_HOLDER, " "),
                target=Target(text="\n".join(texts), regions=texts),
            )
        )
    return prompts


def image_key(stem: str) -> tuple[str, int]:
    """eval_dgocr.py reads `{key}_{j}.jpg`: the last "_j" is the sample, the rest the key."""
    key, _, sample = stem.rpartition("_")
    return (key, int(sample)) if key and sample.isdigit() else (stem, 0)


PROTOCOL = Protocol(
    name="anytext",
    title="AnyText-benchmark (laion_word, English)",
    version="1",
    metrics=("sen_acc", "ned"),
    score_item=score_item,
    aggregate=aggregate,
    official_code="tyxsspa/AnyText@3d4a260c67d92c0e27d6e18ed69990e19a40de6d eval/eval_dgocr.py",
    official_engine="DAMO ConvNeXt-Tiny recognizer (modelscope) on ground-truth line crops",
    read_prompts=read_prompts,
    image_key=image_key,
    deviations=(
        "NED uses the English dictionary (laion_word); wukong_word's Chinese dictionary "
        "(ppocr_keys_v1) is not carried, so its NED on characters outside printable ASCII "
        "differs; transcript lines stand in for per-region crops"
    ),
    extra={"ned_unicode": "NED on the characters themselves, not the dictionary ids"},
)
