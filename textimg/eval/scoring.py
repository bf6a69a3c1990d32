"""`score`: OCR images that already exist and measure how well each one writes its prompt.

Images come from a folder named by the prompts' `key` (`KEY.png`, `.jpg`, ...) or from WebDataset
shards (then each sample's own `KEY.txt` is the prompt unless a prompts file says otherwise), so
any generator's output, or a training corpus, can be checked. Nothing here crashes on one bad
input: a missing image, an unreadable file, an OCR failure, an empty or missing prompt each become
a row with its `status`, and the summary counts them.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from textimg.data.pack_sources import JSONL_SUFFIXES, is_utf8
from textimg.data.shards import IMAGE_EXTENSIONS, image_member, iter_samples
from textimg.errors import TextimgError
from textimg.eval import metrics
from textimg.eval.ocr import OcrEngine
from textimg.eval.report import render_report, thumbnail_data_uri
from textimg.eval.run_identity import RESULT_FILES, score_run
from textimg.files import check_output_dir, check_output_file, write_atomic
from textimg.images import to_eight_bit
from textimg.interrupt import Interrupted
from textimg.output_owner import claim_folder

SCORED_STATUSES = ("ok", "empty_prompt")
"""Rows that get metrics; an empty prompt is a real case (an image that should show no text)."""

ProgressCallback = Callable[[str, int, int | None], None]
"""Called as `(stage, done, total)`, total None where it is not known beforehand (shards)."""


@dataclass
class Item:
    """One image to score; `image` is None when it could not be loaded (see `status`)."""

    key: str
    prompt: str | None
    source: str
    image: Image.Image | None = None
    status: str = "ok"
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptLine:
    """One line of a prompts file: its key and text, or why it could not be used (`error`)."""

    number: int
    key: str
    text: str | None
    error: str = ""


def parse_prompt_lines(path: Path) -> list[PromptLine]:
    """Every non-blank line of a prompts file, bad ones carrying an `error`.

    Two formats, told apart by the name: a `.jsonl` or `.ndjson` file (`JSONL_SUFFIXES`, as
    `pack` reads them) holds `{"key": ..., "text": ...}` lines (test_split.jsonl from `textimg
    pack`); any other file, or a pipe (`--prompts <(...)`), holds one prompt a line, keyed
    `line-N`, where a literal `\\n` starts a new line of text. Every command reads prompts here,
    so a file means the same to `sample`, `score` and `eval`.

    Lenient so that `eval` can turn a bad line into a row instead of stopping a long run; a bad
    line's key is `line-N`. A key must be usable as a file name, and keys must be unique. A line
    that is not UTF-8, or whose text is null or not a string, is bad too: read as U+FFFD or as an
    empty prompt it would be scored against text that no one wrote.
    """
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    lines: list[PromptLine] = []
    seen: set[str] = set()
    for number, raw in enumerate(_prompt_bytes(path).split(b"\n"), 1):
        try:
            decoded = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError as error:
            reason = f"not UTF-8 text (byte {error.start + 1} of the line)"
            lines.append(PromptLine(number, f"line-{number}", None, reason))
            continue
        if number == 1:
            decoded = decoded.removeprefix("\ufeff")  # a byte-order mark some editors write
        if not decoded.strip():
            continue
        if not jsonl:
            lines.append(PromptLine(number, f"line-{number}", decoded.replace("\\n", "\n")))
            continue
        try:
            row = json.loads(decoded)
            key, text = str(row["key"]), row.get("text")
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            reason = f"not a {{key, text}} JSON line ({type(error).__name__}: {error})"
            lines.append(PromptLine(number, f"line-{number}", None, reason))
            continue
        if not isinstance(text, str):
            problem = "has no text" if text is None else f"has a {type(text).__name__} as text"
            lines.append(PromptLine(number, f"line-{number}", None, f"key {key!r} {problem}"))
        elif not key or key.startswith(".") or "/" in key or "\\" in key:
            error = f"key {key!r} is not usable as a file name"
            lines.append(PromptLine(number, f"line-{number}", text, error))
        elif key in seen:
            lines.append(PromptLine(number, f"line-{number}", text, f"duplicate key {key!r}"))
        else:
            seen.add(key)
            lines.append(PromptLine(number, key, text))
    return lines


def check_prompts_path(path: Path) -> None:
    """Refuse a prompts path that names nothing, or a folder, before any work; a file or a pipe
    (`<(...)`, a FIFO) is read."""
    if path.is_dir():
        raise TextimgError(f"prompts file {path} is a folder; give the file of prompts in it")
    if not path.exists():
        raise TextimgError(f"prompts file {path} does not exist")


_PIPED: dict[Path, bytes] = {}
"""The bytes of each pipe read as a prompts file: a pipe gives them once, and a command may
check its prompts before it reads them again for the run."""


def _prompt_bytes(path: Path) -> bytes:
    check_prompts_path(path)
    if path.is_file():
        return path.read_bytes()
    if path not in _PIPED:
        _PIPED[path] = path.read_bytes()
    return _PIPED[path]


def _strict(path: Path) -> list[PromptLine]:
    """The lines of a prompts file, refusing the first bad one with its line number."""
    lines = parse_prompt_lines(path)
    for line in lines:
        if line.error:
            raise TextimgError(f"{path}:{line.number}: {line.error}")
    return lines


def read_prompts(path: Path) -> dict[str, str]:
    """Key -> text of a prompts file (test_split.jsonl from `textimg pack`); strict: any bad
    line is an error, because `score` pairs files by key and a lost key would go unnoticed."""
    return {line.key: line.text or "" for line in _strict(path)}


def prompt_texts(path: Path) -> list[str]:
    """The texts of a prompts file in order (what `sample` draws); strict, as `read_prompts`."""
    return [line.text or "" for line in _strict(path)]


def open_image_for_ocr(data: bytes | Path) -> Image.Image:
    """An image file or its bytes as RGB at its own size, as the OCR engines read it, fully
    loaded (so the file can be closed or replaced); training's `data.reader.decode_image`
    instead makes a model's input tensor."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with Image.open(source) as image:
        image.load()
        return to_eight_bit(image).convert("RGB")


def _loaded(item: Item, data: bytes | Path) -> Item:
    try:
        item.image = open_image_for_ocr(data)
    except Exception as error:  # PIL raises many types for bad files; any of them is "unreadable"
        item.status, item.error = "unreadable_image", f"{type(error).__name__}: {error}"
        return item
    if item.status != "ok":  # already known bad (a prompt that is not text)
        return item
    if item.prompt is None:
        item.status = "missing_prompt"
    elif not item.prompt.strip():
        item.status = "empty_prompt"
    return item


def image_paths(directory: Path, recursive: bool = False) -> list[Path]:
    """The image files of a folder (and its subfolders when `recursive`), sorted; a file name
    that is not UTF-8 is refused naming the file (pack's rule, `is_utf8`): its key or path could
    be written to no CSV, JSON or report."""
    found = directory.rglob("*") if recursive else directory.iterdir()
    paths = sorted(p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    for path in paths:
        if not is_utf8(str(path.relative_to(directory))):
            name = os.fsencode(path.relative_to(directory)).decode("utf-8", "backslashreplace")
            raise TextimgError(f"{directory}: the file name {name!r} is not UTF-8; rename it")
    return paths


def image_files(directory: Path) -> dict[str, Path]:
    """The images of a folder by key (file name without extension).

    Two images sharing a key (`good.png` and `good.jpg`) are refused naming both: the key pairs
    an image with its prompt, and a user who has both formats of one image would not expect
    either to be scored in place of the other, nor both to count as two samples of one prompt
    (which would change what the summary's means are over)."""
    images: dict[str, Path] = {}
    for path in image_paths(directory):
        if path.stem in images:
            raise TextimgError(
                f"{images[path.stem].name} and {path.name} in {directory} share the key "
                f"{path.stem!r}: keep one of them, or rename the other"
            )
        images[path.stem] = path
    return images


def folder_items(images: dict[str, Path], prompts: dict[str, str]) -> Iterator[Item]:
    """Every prompt with its `KEY.<ext>` image, then images whose key has no prompt."""
    for key, prompt in prompts.items():
        path = images.get(key)
        if path is None:
            yield Item(key, prompt, "", status="missing_image", error=f"no {key}.<image> in folder")
        else:
            yield _loaded(Item(key, prompt, path.name), path)
    for key, path in images.items():
        if key not in prompts:
            yield _loaded(Item(key, None, path.name), path)


def shard_items(source: Path, prompts: dict[str, str] | None) -> Iterator[Item]:
    """Samples of shards; the prompt is the prompts file's text, else the sample's own `.txt`."""
    seen: set[str] = set()
    for key, members in iter_samples([source]):
        seen.add(key)
        status, error = "ok", ""
        if prompts is not None:
            prompt = prompts.get(key)
        else:
            try:
                prompt = members["txt"].decode("utf-8") if "txt" in members else None
            except UnicodeDecodeError:
                prompt, status, error = None, "bad_prompt", f"{key}.txt is not UTF-8 text"
        found = image_member(members)
        if found is None:
            yield Item(key, prompt, key, status="missing_image", error="sample has no image member")
        else:
            yield _loaded(Item(key, prompt, f"{key}.{found[0]}", status=status, error=error),
                          found[1])  # fmt: skip
    for key, prompt in (prompts or {}).items():
        if key not in seen:
            yield Item(key, prompt, "", status="missing_image", error="key not in shards")


def iter_items(images: Path, prompts_path: Path | None) -> tuple[Iterator[Item], int | None]:
    """Items from a folder of images or from shards (a `.tar`, a folder of them, or a glob), and
    how many there will be where that is known without reading them (a folder)."""
    prompts = read_prompts(prompts_path) if prompts_path is not None else None
    is_folder = images.is_dir() and not any(images.glob("*.tar"))
    if is_folder:
        if prompts is None:
            raise TextimgError("scoring a folder of images needs --prompts (KEY -> text)")
        files = image_files(images)
        return folder_items(files, prompts), len(prompts) + len(files.keys() - prompts.keys())
    return shard_items(images, prompts), None


def read_items(items: Sequence[Item], engine: OcrEngine) -> list[str | None]:
    """Transcripts of the items' images; one failing image fails alone, not its batch."""
    readable = [item for item in items if item.image is not None]
    transcripts: dict[int, str | None] = {}
    try:
        for item, text in zip(readable, engine.read([i.image for i in readable]), strict=True):
            transcripts[id(item)] = text
    except Exception:
        for item in readable:
            try:
                transcripts[id(item)] = engine.read([item.image])[0]
            except Exception as error:  # an OCR crash on one image is that image's status
                item.status, item.error = "ocr_error", f"{type(error).__name__}: {error}"
                transcripts[id(item)] = None
    return [transcripts.get(id(item)) for item in items]


def score_items(
    items: Iterable[Item],
    engine: OcrEngine,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One result row per item (metrics NaN unless scored) and each row's thumbnail by key+source.

    Images are read in batches so the engine can batch, and dropped after thumbnailing so memory
    stays flat however many images there are. `progress` gets the number of rows done after each
    batch; rows are appended to `rows` as they finish, so a caller stopped by Ctrl-C holds them.
    """
    rows = [] if rows is None else rows
    thumbnails: dict[str, str] = {}
    batch: list[Item] = []

    def flush() -> None:
        for item, transcript in zip(batch, read_items(batch, engine), strict=True):
            row = {"key": item.key, "prompt": item.prompt, "transcript": transcript}
            row |= {"image": item.source, "status": item.status, "error": item.error, **item.extra}
            scored = item.status in SCORED_STATUSES and transcript is not None
            for name, metric in metrics.METRICS.items():
                row[name] = metric(item.prompt or "", transcript) if scored else math.nan
            if item.image is not None:
                thumbnails[f"{item.key}/{item.source}"] = thumbnail_data_uri(item.image)
            rows.append(row)
        if progress is not None:
            progress(len(rows))
        batch.clear()

    for item in items:
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return rows, thumbnails


def summarize(rows: Sequence[dict[str, Any]], group: str = "key") -> dict[str, Any]:
    """Per metric `{"mean", "ci95"}`, plus counts; best-of-K when `group` holds several samples.

    `group` names the column that identifies a prompt: several rows with the same value are the K
    samples of that prompt (as `eval` writes them); in `score` every key is its own prompt.
    """
    scored = [
        row for row in rows if row["status"] in SCORED_STATUSES and row["transcript"] is not None
    ]
    summary: dict[str, Any] = {}
    for name in metrics.METRICS:
        mean, low, high = metrics.mean_ci(row[name] for row in scored)
        summary[name] = {"mean": _finite(mean), "ci95": [_finite(low), _finite(high)]}
    by_prompt: dict[Any, list[dict[str, Any]]] = {}
    for row in scored:
        by_prompt.setdefault(row[group], []).append(row)
    samples = [len(v) for v in by_prompt.values()]
    if samples and max(samples) > 1:
        for name in ("trigram", "trigram_ci", "cer", "exact"):
            best = metrics.best_of_k([[r[name] for r in v] for v in by_prompt.values()], name)
            mean, low, high = metrics.mean_ci(best)
            summary[f"best_of_k_{name}"] = {
                "mean": _finite(mean),
                "ci95": [_finite(low), _finite(high)],
            }
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    summary["exact_share"] = _finite(
        metrics.exact_share([[r["exact"] for r in v] for v in by_prompt.values()])
    )
    summary["counts"] = {
        "rows": len(rows),
        "scored": len(scored),
        "prompts": len(by_prompt),
        "samples_per_prompt": max(samples) if samples else 0,
        "status": statuses,
    }
    return summary


def prompt_reading_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many prompts (keys) the model could not read in full: cut to its text length
    (`truncated`), or holding characters outside its vocabulary, drawn as unknown tokens; the
    counts of the `Warning:` lines sampling prints, kept in the summary with the scores they
    explain."""
    from textimg.model.tokenizer import unknown_characters

    truncated = {row["key"] for row in rows if row.get("truncated")}
    unknown = {row["key"] for row in rows if unknown_characters(row.get("prompt") or "")}
    return {"truncated_prompts": len(truncated), "unknown_character_prompts": len(unknown)}


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined mean (nothing scored) is written as null."""
    return None if math.isnan(value) else round(value, 6)


def write_results(
    out: Path,
    rows: Sequence[dict[str, Any]],
    thumbnails: dict[str, str],
    summary: dict,
    kind: str = "score",
) -> None:
    """results.csv, results.parquet, summary.json and report.html under `out` (each atomic);
    `kind` ("score" or "eval") titles the report."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(list(rows))
    write_atomic(out / "results.csv", lambda path: frame.to_csv(path, index=False))
    write_atomic(out / "results.parquet", lambda path: frame.to_parquet(path, index=False))
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    write_atomic(out / "summary.json", lambda path: Path(path).write_text(text, encoding="utf-8"))
    report = render_report(rows, thumbnails, summary, kind)
    write_atomic(out / "report.html", lambda path: Path(path).write_text(report, encoding="utf-8"))


def score(
    images: Path,
    prompts: Path | None,
    out: Path,
    engine: OcrEngine,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Score `images` against `prompts` into `out`; returns the summary written to summary.json.
    Results of another run in `out` are replaced only with `overwrite` (`claim_folder`).

    Ctrl-C stops it with the transcripts read so far in the OCR cache, where the same command
    finds them again."""
    if not images.exists() and not any(char in str(images) for char in "*?["):
        raise TextimgError(f"{images} does not exist")
    check_output_dir(out)
    items, total = iter_items(images, prompts)
    claim_folder(out, score_run(images, prompts, engine), RESULT_FILES, overwrite)
    report = None if progress is None else lambda done: progress("reading", done, total)
    rows: list[dict[str, Any]] = []
    try:
        rows, thumbnails = score_items(items, engine, progress=report, rows=rows)
    except KeyboardInterrupt:
        raise Interrupted(stopped_reading(len(rows), total, engine)) from None
    summary = summarize(rows)
    summary["ocr"] = engine.describe()
    write_results(out, rows, thumbnails, summary)
    return summary


def stopped_reading(done: int, total: int | None, engine: OcrEngine) -> str:
    """The line an OCR run stopped by Ctrl-C ends with: what it read and where that is kept."""
    kept = (
        "their transcripts are in the OCR cache, so the same command reads only the rest"
        if engine.cache is not None
        else "nothing is kept without the OCR cache"
    )
    return f"{done}{'' if total is None else f' of {total}'} images read; {kept}"


def transcribe(
    directory: Path,
    out: Path,
    engine: OcrEngine,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> dict[str, int]:
    """Write `{"image": relpath, "text": ...}` lines for every image under `directory`.

    The format `textimg pack --transcripts` reads. Unreadable images are skipped and counted
    rather than written with an invented transcript. An existing `out` is the user's file (often
    hand-corrected transcripts): it is replaced only with `overwrite`.
    """
    if not directory.is_dir():
        raise TextimgError(f"{directory} is not a folder of images")
    check_output_file(out, overwrite)
    paths = image_paths(directory, recursive=True)
    if not paths:
        raise TextimgError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {directory}")
    counts = {"images": len(paths), "written": 0, "unreadable": 0, "ocr_error": 0}
    lines: list[str] = []
    for start in range(0, len(paths), batch_size):
        chunk = [
            _loaded(Item(p.relative_to(directory).as_posix(), "", str(p)), p)
            for p in paths[start : start + batch_size]
        ]
        try:
            read = read_items(chunk, engine)
        except KeyboardInterrupt:
            raise Interrupted(stopped_reading(start, len(paths), engine)) from None
        for item, text in zip(chunk, read, strict=True):
            if item.image is None:
                counts["unreadable"] += 1
            elif text is None:
                counts["ocr_error"] += 1
            else:
                lines.append(json.dumps({"image": item.key, "text": text}, ensure_ascii=False))
                counts["written"] += 1
        if progress is not None:
            progress("reading", start + len(chunk), len(paths))
    if not lines:
        raise TextimgError(
            f"no transcript to write: {counts['unreadable']} unreadable images, "
            f"{counts['ocr_error']} OCR errors"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(line + "\n" for line in lines)
    write_atomic(out, lambda path: Path(path).write_text(body, encoding="utf-8"))
    return counts
