"""Held-out prompts and the references a score is read against, for the learn-to-write runs.

A model's OCR score means little alone (nostalgebraist 2022 judged by round trip): the prompts
must never have been rendered for training (`split_strings`), chance is the same samples scored
against a derangement of their prompts (`derangement`), and the ceiling is clean renderings
scored the same way. The learn-to-write chain (`textimg.learning`) and the GPU benchmark share
these, the prompt files that `synth --text-file`, `eval` and `score` read, the score table and
the sample sheet.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textimg.errors import TextimgError
from textimg.files import write_text_atomic

REPORTED_METRICS = ("trigram", "exact")


def split_strings(
    alphabet: str, heldout: int, seed: int, short_repeat: int, two_share: float = 0.25
) -> tuple[list[str], list[str]]:
    """(training texts, held-out prompts) over every 2- and 3-character string of `alphabet`.

    `two_share` of the held-out prompts (a quarter by default) have 2 characters. The
    2-character training strings are repeated `short_repeat` times, so they are not drowned by
    the len(alphabet) times more 3-character ones. No held-out prompt is ever a training text.
    """
    rng = random.Random(seed)
    two = ["".join(p) for p in itertools.product(alphabet, repeat=2)]
    three = ["".join(p) for p in itertools.product(alphabet, repeat=3)]
    rng.shuffle(two)
    rng.shuffle(three)
    held_two = int(heldout * two_share)
    if held_two >= len(two) or heldout - held_two >= len(three):
        raise TextimgError(f"{heldout} held-out prompts leave too few strings of {alphabet!r}")
    prompts = two[:held_two] + three[: heldout - held_two]
    rng.shuffle(prompts)
    return two[held_two:] * short_repeat + three[heldout - held_two :], prompts


def derangement(items: Sequence[str], seed: int) -> list[str]:
    """The items shuffled so that no position keeps an equal item (the chance baseline)."""
    rng = random.Random(seed)
    for _ in range(1000):
        shuffled = list(items)
        rng.shuffle(shuffled)
        if all(a != b for a, b in zip(items, shuffled, strict=True)):
            return shuffled
    raise TextimgError("could not shuffle the prompts without fixed points")


def write_text_file(texts: Sequence[str], path: Path) -> Path:
    """One text a line, line breaks as a literal `\\n` (what `synth --text-file` reads)."""
    write_text_atomic(path, "".join(t.replace("\n", "\\n") + "\n" for t in texts))
    return path


def write_prompts_file(keys: Sequence[str], texts: Sequence[str], path: Path) -> Path:
    """A `{"key", "text"}` JSON line per prompt (what `eval` and `score --prompts` read)."""
    rows = (json.dumps({"key": k, "text": t}) for k, t in zip(keys, texts, strict=True))
    write_text_atomic(path, "".join(row + "\n" for row in rows))
    return path


def score_entry(summary: dict[str, Any]) -> dict[str, Any]:
    """The reported metrics of a scoring summary (mean and 95% CI each) and how many it scored."""
    entry = {m: summary[m] for m in REPORTED_METRICS if m in summary}
    entry["n"] = summary["counts"]["scored"]
    return entry


def read_score_entry(summary: Path) -> dict[str, Any]:
    """`score_entry` of a `summary.json` that `score` or `eval` wrote."""
    return score_entry(json.loads(summary.read_text()))


def score_rows(name: str, scores: dict[str, dict[str, Any]]) -> list[str]:
    """Table rows: each condition's metrics as mean [95% CI] and exact match over the ceiling."""
    ceiling = next((s for c, s in scores.items() if c.startswith("clean renderings")), {})
    ceiling_exact = ceiling.get("exact", {}).get("mean")
    rows = []
    for condition, entry in scores.items():
        cells = []
        for metric in REPORTED_METRICS:
            value = entry.get(metric) or {}
            if value.get("mean") is None:
                cells.append(f"{'-':>24s}")
                continue
            low, high = value["ci95"]
            cells.append(f"{value['mean']:.3f} [{low:.3f}, {high:.3f}]".rjust(24))
        exact = (entry.get("exact") or {}).get("mean")
        ratio = f"{exact / ceiling_exact:.2f}" if exact is not None and ceiling_exact else "-"
        rows.append(f"{name:12s} {condition:44s} {' '.join(cells)} {ratio:>10s}")
    return rows


SCORE_HEADER = f"{'task':12s} {'condition':44s} {'trigram':>24s} {'exact':>24s} {'exact/ceil':>10s}"


def score_table(scores_by_task: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The plain-text table of every task's score rows under one header."""
    rows = [row for name, scores in scores_by_task.items() for row in score_rows(name, scores)]
    return "\n".join([SCORE_HEADER, *rows])


def write_sample_sheet(folder: Path, path: Path, limit: int = 32, cell: int = 64) -> Path:
    """A contact sheet of scored samples captioned `prompt` and `OCR: what it read`."""
    import pandas as pd
    from PIL import Image

    from textimg.images import contact_sheet

    # as text: a prompt like "039" is not the number 39
    rows = pd.read_csv(folder / "results.csv", dtype=str, keep_default_na=False)
    rows = rows[rows["image"] != ""].head(limit)  # a prompt without an image has nothing to show
    items = []
    for row in rows.itertuples():
        image = Image.open(folder / row.image).resize((cell, cell), Image.NEAREST)
        prompt = str(row.prompt).replace("\n", " / ")
        read = str(row.transcript).replace("\n", " / ")
        items.append((image, f"{prompt}\nOCR: {read}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(items, columns=8, cell=cell).save(path, optimize=True)
    return path
