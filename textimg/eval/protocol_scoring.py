"""`score --protocol`: one benchmark's prompt file, image names and metrics, from images or from
transcripts someone else read.

Rows are `score`'s rows (key, prompt, transcript, image, status, error) plus the sample index the
protocol's `image_key` found in the image name and the protocol's per-item metrics; the summary
is the benchmark's own aggregate, with everything that can make two runs differ: the protocol and
its version, the reader (engine, models, upscaling, preprocessing) or "supplied transcripts", and
the prompt file and how it was read. Transcripts (`--transcripts`) go through the same rows,
summary and report without loading any OCR engine.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textimg.errors import TextimgError
from textimg.eval import metrics
from textimg.eval.ocr import AUTO_UPSCALE_BELOW, OcrEngine, RegisteredEngine
from textimg.eval.protocols import BenchmarkPrompt, Protocol, Target
from textimg.eval.scoring import (
    SCORED_STATUSES,
    Item,
    ProgressCallback,
    _loaded,
    image_files,
    read_prompts,
    score_items,
    stopped_reading,
    summarize,
    write_results,
)
from textimg.files import check_output_dir, write_atomic
from textimg.interrupt import Interrupted

SUPPLIED = "supplied transcripts"
"""What summary.json names as the reader when the transcripts came with the command."""


@dataclass(frozen=True)
class PromptSet:
    """The prompts a protocol scores against, and how their file was read (for summary.json)."""

    prompts: list[BenchmarkPrompt]
    file: str
    format: str

    def targets(self) -> dict[str, Target]:
        return {prompt.key: prompt.target for prompt in self.prompts}


def is_textimg_prompts(path: Path) -> bool:
    """A `.jsonl` whose first line is a `{"key", "text"}` object with a string text: textimg's own
    prompts file (LongText-Bench's JSONL also has `text`, but as a list)."""
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    with path.open(encoding="utf-8", errors="replace") as lines:
        first = next((line for line in lines if line.strip()), "")
    try:
        row = json.loads(first.removeprefix("\ufeff"))
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and "key" in row and isinstance(row.get("text"), str)


def read_textimg_prompts(path: Path) -> PromptSet:
    """textimg's prompts file as a prompt set, each text its own single-region target."""
    texts = read_prompts(path)
    prompts = [BenchmarkPrompt(key, text, Target(text)) for key, text in texts.items()]
    return PromptSet(prompts, str(path), "textimg prompts file")


def read_protocol_prompts(protocol: Protocol, path: Path) -> PromptSet:
    """The benchmark's own prompt file through the protocol's reader, or textimg's prompts file
    (each text one target) where the protocol has no reader or the file is textimg's JSONL."""
    if not path.exists():
        raise TextimgError(f"prompts file {path} does not exist")
    if protocol.read_prompts is None or is_textimg_prompts(path):
        return read_textimg_prompts(path)
    try:
        prompts = protocol.read_prompts(path)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        raise TextimgError(
            f"{path} is not a {protocol.title} prompt file ({type(error).__name__}: {error}); "
            "a textimg prompts file is a .jsonl of {key, text} lines"
        ) from None
    return PromptSet(prompts, str(path), f"{protocol.title} prompt file")


def protocol_items(folder: Path, prompts: PromptSet, protocol: Protocol) -> Iterator[Item]:
    """Every prompt with each image the protocol's `image_key` gives its key (sample order),
    then images whose key has no prompt; a prompt without any image is a `missing_image` row."""
    if not folder.is_dir():
        raise TextimgError(f"{folder} is not a folder of images (--protocol reads a folder)")
    found: dict[str, list[tuple[int, Path]]] = {}
    for stem, path in image_files(folder).items():
        key, sample = protocol.image_key(stem)
        found.setdefault(key, []).append((sample, path))
    for prompt in prompts.prompts:
        images = sorted(found.pop(prompt.key, []))
        if not images:
            error = f"no image named for key {prompt.key!r}"
            yield Item(prompt.key, prompt.target.text, "", status="missing_image", error=error)
        for sample, path in images:
            item = Item(prompt.key, prompt.target.text, path.name, extra={"sample": sample})
            yield _loaded(item, path)
    for key, images in found.items():
        for sample, path in sorted(images):
            yield _loaded(Item(key, None, path.name, extra={"sample": sample}), path)


def protocol_rows(
    rows: list[dict[str, Any]], targets: dict[str, Target], protocol: Protocol
) -> list[dict[str, Any]]:
    """`score`'s rows re-scored by the protocol: its per-item metrics in place of textimg's."""
    scored = []
    for row in rows:
        kept = {name: value for name, value in row.items() if name not in metrics.METRICS}
        kept.setdefault("sample", 0)
        target = targets.get(row["key"])
        scored_row = row["status"] in SCORED_STATUSES and row["transcript"] is not None
        if target is not None and scored_row:
            kept |= protocol.score_item(target, row["transcript"])
        scored.append(kept)
    return scored


def read_transcripts(path: Path) -> list[tuple[str, int, str]]:
    """(key, sample, transcript) of every `{key, transcript}` or `{key, sample, transcript}` line;
    strict: a bad line is refused with its number, since it would silently lose an image."""
    if not path.is_file():
        raise TextimgError(f"transcripts file {path} does not exist")
    read = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.removeprefix("\ufeff"))
            key, transcript, sample = str(row["key"]), row["transcript"], int(row.get("sample", 0))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise TextimgError(
                f"{path}:{number}: not a {{key, transcript}} or {{key, sample, transcript}} JSON "
                f"line ({type(error).__name__}: {error})"
            ) from None
        if not isinstance(transcript, str):
            raise TextimgError(f"{path}:{number}: the transcript of {key!r} is not a string")
        read.append((key, sample, transcript))
    return read


def transcript_rows(
    path: Path, prompts: PromptSet, protocol: Protocol | None
) -> list[dict[str, Any]]:
    """One row per supplied transcript (a key that is no prompt's is read through the protocol's
    `image_key`, as an image name would be), and a `missing_transcript` row per prompt without
    one; metrics are the protocol's, or textimg's own without a protocol."""
    keys = {prompt.key for prompt in prompts.prompts}
    split = protocol.image_key if protocol is not None else None
    by_key: dict[str, list[tuple[int, str]]] = {}
    for key, sample, transcript in read_transcripts(path):
        if key not in keys and split is not None:
            key, sample = split(key)
        by_key.setdefault(key, []).append((sample, transcript))
    rows = []
    for prompt in prompts.prompts:
        readings = sorted(by_key.pop(prompt.key, []))
        if not readings:
            rows.append(_transcript_row(prompt.key, prompt.target.text, 0, None, "missing_image"))
        for sample, transcript in readings:
            rows.append(_transcript_row(prompt.key, prompt.target.text, sample, transcript, "ok"))
    for key, readings in by_key.items():
        rows += [_transcript_row(key, None, s, t, "missing_prompt") for s, t in sorted(readings)]
    if protocol is None:
        for row in rows:
            scored = row["status"] in SCORED_STATUSES and row["transcript"] is not None
            for name, metric in metrics.METRICS.items():
                row[name] = metric(row["prompt"] or "", row["transcript"]) if scored else math.nan
        return rows
    return protocol_rows(rows, prompts.targets(), protocol)


def _transcript_row(
    key: str, prompt: str | None, sample: int, transcript: str | None, status: str
) -> dict[str, Any]:
    if status == "ok" and prompt is not None and not prompt.strip():
        status = "empty_prompt"
    error = "no transcript for this key" if status == "missing_image" else ""
    if status == "missing_image":
        status = "missing_transcript"
    row = {"key": key, "sample": sample, "prompt": prompt, "transcript": transcript}
    return row | {"image": "", "status": status, "error": error}


def scored_items(rows: Sequence[dict[str, Any]], item_names: Sequence[str]) -> list[dict]:
    """The per-item metric dicts of the rows the protocol scored (what its aggregate takes)."""
    items = []
    for row in rows:
        if row["status"] in SCORED_STATUSES and row["transcript"] is not None:
            item = {name: row[name] for name in item_names if name in row}
            if item:
                items.append(item)
    return items


def item_metric_names(rows: Sequence[dict[str, Any]], protocol: Protocol) -> list[str]:
    """The per-item columns the protocol wrote, its headline metrics first."""
    fixed = {"key", "sample", "prompt", "transcript", "image", "status", "error"}
    names = dict.fromkeys(name for row in rows for name in row if name not in fixed)
    headline = [name for name in protocol.metrics if name in names]
    return headline + [name for name in names if name not in headline]


def describe_protocol(protocol: Protocol) -> dict[str, Any]:
    """The protocol as summary.json records it: two runs agree only where this agrees."""
    return {
        "name": protocol.name,
        "title": protocol.title,
        "version": protocol.version,
        "metrics": list(protocol.metrics),
        "lower_is_better": sorted(protocol.lower_is_better),
        "official_code": protocol.official_code,
        "official_engine": protocol.official_engine,
        "deviations": protocol.deviations,
        "extra": dict(protocol.extra),
    }


def describe_reader(engine: OcrEngine | None, transcripts: Path | None) -> dict[str, Any]:
    """The reader as summary.json records it: engine, model versions, upscaling, preprocessing;
    or the supplied transcripts file and its digest."""
    if engine is None:
        assert transcripts is not None
        digest = hashlib.sha256(transcripts.read_bytes()).hexdigest()
        return {
            "engine": SUPPLIED,
            "file": str(transcripts),
            "sha256": digest,
            "upscale": None,
            "preprocessing": "none in textimg: the transcripts were read elsewhere",
        }
    described = engine.describe()
    if isinstance(engine, RegisteredEngine):
        described["upscale"] = "none in textimg: the registered reader's own"
        described["preprocessing"] = "none in textimg: RGB at the file's own size"
        return described
    upscale = engine.settings.upscale
    described["upscale"] = upscale or f"2x when the longer side is under {AUTO_UPSCALE_BELOW} px"
    described["preprocessing"] = (
        "RGB at the file's own size; detections under --min-confidence or within "
        "--corner-margin dropped; lines grouped top to bottom"
    )
    return described


def count_rows(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rows, scored rows, prompts, most samples of one prompt, and rows by status."""
    scored = [r for r in rows if r["status"] in SCORED_STATUSES and r["transcript"] is not None]
    samples = Counter(row["key"] for row in scored)
    return {
        "rows": len(rows),
        "scored": len(scored),
        "prompts": len(samples),
        "samples_per_prompt": max(samples.values(), default=0),
        "status": dict(Counter(row["status"] for row in rows)),
    }


def protocol_summary(
    rows: Sequence[dict[str, Any]],
    protocol: Protocol,
    prompts: PromptSet,
    reader: dict[str, Any],
) -> dict[str, Any]:
    """summary.json of a protocol run: the benchmark's own aggregate over every scored image (as
    its code averages every generated image) and what the run was scored with."""
    names = item_metric_names(rows, protocol)
    aggregate = protocol.aggregate(scored_items(rows, names))
    protocol_record = describe_protocol(protocol) | {"item_metrics": names}
    return {
        "protocol": protocol_record,
        "aggregate": {name: finite(value) for name, value in aggregate.items()},
        "counts": count_rows(rows),
        "ocr": reader,
        "prompts": {"file": prompts.file, "format": prompts.format},
    }


def finite(value: float) -> float | None:
    """JSON has no NaN: an undefined value is written as null."""
    return None if isinstance(value, float) and math.isnan(value) else round(float(value), 6)


def score_images(
    folder: Path,
    prompts: PromptSet,
    protocol: Protocol,
    engine: OcrEngine,
    report: Any = None,
    rows: list[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Read the protocol's images of `folder` with `engine` (batched, one failure alone, through
    `score`'s reader) and score each through the protocol; returns rows and thumbnails."""
    rows = [] if rows is None else rows
    items = protocol_items(folder, prompts, protocol)
    read, thumbnails = score_items(items, engine, progress=report, rows=rows)
    return protocol_rows(read, prompts.targets(), protocol), thumbnails


def ceiling_summary(
    rows: Sequence[dict[str, Any]],
    prompts: PromptSet,
    protocol: Protocol,
    engine: OcrEngine,
    out: Path,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """`--ceiling`: every prompt's clean rendering read by `engine` and scored by the protocol
    (written per prompt to ceiling.csv), overall and beside the images by target length."""
    import pandas as pd

    from textimg.eval import ceiling  # font discovery only when a ceiling is asked for

    total = len(prompts.prompts)
    report = None if progress is None else lambda done: progress("ceiling", done, total)
    clean = ceiling.read_ceiling(prompts.prompts, protocol, engine, report)
    frame = pd.DataFrame(
        [{"key": r["key"], "font": r["font"], "transcript": r["transcript"], **r["scores"]}
         for r in clean]
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "ceiling.csv", lambda path: frame.to_csv(path, index=False))
    targets = prompts.targets()
    names = item_metric_names(rows, protocol)
    image_items = [
        (targets[row["key"]], items[0])
        for row in rows
        if row["key"] in targets and (items := scored_items([row], names))
    ]
    aggregate = protocol.aggregate([row["scores"] for row in clean]) if clean else {}
    return {
        "renderer": {"size": ceiling.CEILING_SIZE, "fonts": sorted({r["font"] for r in clean})},
        "aggregate": {name: finite(value) for name, value in aggregate.items()},
        "by_length": ceiling.by_length(image_items, clean, protocol),
    }


def score_protocol(
    protocol: Protocol,
    prompts: PromptSet,
    out: Path,
    source: Path,
    engine: OcrEngine | None,
    with_ceiling: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Score a folder of images (read by `engine`) or, with no engine, a transcripts file through
    `protocol` into `out`; returns the summary written to summary.json."""
    if with_ceiling and engine is None:
        raise TextimgError("--ceiling measures textimg's reader on clean renderings: it reads "
                           "images, so it does not go with --transcripts")  # fmt: skip
    check_output_dir(out)
    rows: list[dict[str, Any]] = []
    thumbnails: dict[str, str] = {}
    if engine is None:
        rows = transcript_rows(source, prompts, protocol)
    else:
        report = None if progress is None else lambda done: progress("reading", done, None)
        try:
            rows, thumbnails = score_images(source, prompts, protocol, engine, report, rows)
        except KeyboardInterrupt:
            raise Interrupted(stopped_reading(len(rows), None, engine)) from None
    reader = describe_reader(engine, None if engine is not None else source)
    summary = protocol_summary(rows, protocol, prompts, reader)
    if with_ceiling and engine is not None:
        summary["ceiling"] = ceiling_summary(rows, prompts, protocol, engine, out, progress)
    write_results(out, rows, thumbnails, summary)
    return summary


def score_transcripts(transcripts: Path, prompts: Path, out: Path) -> dict[str, Any]:
    """Supplied transcripts scored with textimg's own metrics (no protocol): `score`'s rows and
    summary, the reader recorded as the transcripts file."""
    check_output_dir(out)
    prompt_set = read_textimg_prompts(prompts)
    rows = transcript_rows(transcripts, prompt_set, None)
    summary = summarize(rows)
    summary["ocr"] = describe_reader(None, transcripts)
    write_results(out, rows, {}, summary)
    return summary
