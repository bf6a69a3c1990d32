"""What `textimg pack` reads: rows of a transcripts table (JSONL, CSV, Parquet) or of the sidecar
layout (each image with its transcript `NAME.txt` beside it).

Every row keeps its place: one that cannot be parsed or used carries a `problem` (reason code,
detail) instead of raising, so one bad line rejects only its own row and every row number in
`rejects.jsonl` is the 0-based record index in the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from textimg.errors import TextimgError

SIDECAR_IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".jfif",
    ".webp",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
)
"""Files that count as images in the sidecar layout; the real format still comes from the bytes."""

JSONL_SUFFIXES = (".jsonl", ".ndjson")
"""Names of JSON-lines files, one rule for every command that reads them (pack's transcripts,
the prompts of sample, eval and score)."""

TABLE_SUFFIXES = {**dict.fromkeys(JSONL_SUFFIXES, "jsonl"), ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Row:
    """One row of the transcripts (or one image of the sidecar layout), as read."""

    index: int | None
    image: str | None
    text: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    problem: tuple[str, str] | None = None


def read_table(path: Path, image_col: str, text_col: str) -> list[Row]:
    """Rows of a JSONL, CSV or Parquet transcripts table (format from the extension).

    Rows that cannot be parsed or used keep their place with a `problem`, so every row number
    in `rejects.jsonl` is the 0-based record index in the file.
    """
    if not path.is_file():
        raise TextimgError(f"transcripts file {path} does not exist")
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(TABLE_SUFFIXES)
        raise TextimgError(f"cannot tell the format of {path} from its extension (use {known})")
    records = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}[kind](path)
    present = {name for record in records if isinstance(record, dict) for name in record}
    for column, flag in ((image_col, "--image-col"), (text_col, "--text-col")):
        if records and column not in present:
            names = ", ".join(sorted(present)) or "none"
            raise TextimgError(
                f"{path} has no column {column!r} (columns: {names}); choose one with {flag}"
            )
    return [
        _row_from_record(index, record, image_col, text_col) for index, record in enumerate(records)
    ]


def _read_jsonl(path: Path) -> list[Any]:
    """Records of a JSONL file, line by line: pandas reads JSONL all-or-nothing, and one bad line
    must reject only its own row. A bad line becomes an `_Unreadable` record in its place; a
    byte-order mark that some editors write before the first line is not part of it."""
    records: list[Any] = []
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as error:
                records.append(_Unreadable(f"not valid JSON: {error}"))
    return records


def _read_csv(path: Path) -> list[Any]:
    """Records of a CSV file, every value a string exactly as written (CSV has no types).

    `keep_default_na=False` keeps "NA", "null" and "" as the transcripts they are; bytes that are
    not UTF-8 survive as surrogates so that only their row is rejected. A line with too many
    fields keeps its place as an `_Unreadable` record.
    """
    import pandas as pd

    marker = "\x00textimg-unreadable-line\x00"
    bad_lines: list[list[str]] = []

    def keep_place(fields: list[str]) -> list[str]:
        bad_lines.append(fields)
        return [marker]

    try:
        frame = pd.read_csv(
            path,
            dtype=object,
            index_col=False,  # else a line with extra fields turns the first column into an index
            engine="python",
            keep_default_na=False,
            na_values=[],
            encoding="utf-8",
            encoding_errors="surrogateescape",
            on_bad_lines=keep_place,
        )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise TextimgError(f"cannot read {path} as CSV: {error}") from None
    records: list[Any] = []
    for record in frame.to_dict("records"):
        if record[frame.columns[0]] == marker:
            fields = bad_lines.pop(0)
            records.append(_Unreadable(f"{len(fields)} fields, the header has {frame.shape[1]}"))
        else:
            records.append(record)
    return records


def _read_parquet(path: Path) -> list[Any]:
    """Records of a Parquet file."""
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises many types for a damaged file
        raise TextimgError(f"cannot read {path} as Parquet: {error}") from None
    return frame.astype(object).where(frame.notna(), None).to_dict("records")  # NA, NaT -> None


@dataclass(frozen=True)
class _Unreadable:
    """A table record that could not be parsed at all, kept in place for its row number."""

    detail: str


def _row_from_record(index: int, record: Any, image_col: str, text_col: str) -> Row:
    """A `Row` from one parsed record; any unusable value becomes the row's `problem`."""
    if isinstance(record, _Unreadable):
        return Row(index, None, problem=("unreadable_row", record.detail))
    if not isinstance(record, dict):
        return Row(index, None, problem=("unreadable_row", "not a JSON object"))
    values = {str(name): _plain(value) for name, value in record.items()}
    image, text = values.pop(image_col, None), values.pop(text_col, None)
    if not isinstance(image, str) or not image:
        return Row(index, None, problem=("unreadable_row", f"no {image_col} path"))
    for name, value in [(image_col, image), (text_col, text), *values.items()]:
        if isinstance(value, str) and not is_utf8(value):
            return Row(index, image, problem=("non_utf8_text", f"{name} is not UTF-8"))
    relative = PurePosixPath(image)
    if relative.is_absolute() or ".." in relative.parts:
        problem = ("unreadable_row", "image path must be relative to IMAGES_DIR and inside it")
        return Row(index, image, problem=problem)
    if not isinstance(text, str):
        detail = f"{text_col} is {'missing' if text is None else type(text).__name__}"
        return Row(index, image, problem=("unreadable_row", detail))
    return Row(index, relative.as_posix(), text, values)


def _plain(value: Any) -> Any:
    """A table value as plain JSON-able Python (numpy, NaN, timestamps, bytes).

    Bytes decode with surrogates for undecodable bytes, so the UTF-8 check that follows rejects
    a binary Parquet column exactly like a bad CSV field.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if hasattr(value, "tolist"):  # numpy scalar or array (Parquet lists arrive as arrays)
        value = value.tolist()
    if isinstance(value, dict):
        return {str(name): _plain(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def is_utf8(text: str) -> bool:
    """False for strings holding surrogates (undecodable bytes of a file name or a table, or a
    lone `\\udXXX` in JSON): the one rule for names and texts that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_sidecars(images_dir: Path) -> list[Row]:
    """Rows of the sidecar layout: every image file with its transcript `NAME.txt` beside it.

    A transcript with no image beside it becomes a row too (without a row number), so that it is
    reported rather than silently skipped.
    """
    files = sorted(
        path.relative_to(images_dir).as_posix()
        for path in images_dir.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.parts)
    )
    images = [
        name for name in files if PurePosixPath(name).suffix.lower() in SIDECAR_IMAGE_SUFFIXES
    ]
    stems = {str(PurePosixPath(name).with_suffix("")) for name in images}
    orphans = [
        Row(None, name, problem=("missing_file", "transcript without an image beside it"))
        for name in files
        if name.endswith(".txt") and str(PurePosixPath(name).with_suffix("")) not in stems
    ]
    return [_sidecar_row(index, images_dir, name) for index, name in enumerate(images)] + orphans


def _sidecar_row(index: int, images_dir: Path, name: str) -> Row:
    """The row of one image in the sidecar layout, its transcript read as exact UTF-8."""
    transcript = PurePosixPath(name).with_suffix(".txt")
    if not is_utf8(name):
        return Row(index, None, problem=("unreadable_row", "file name is not UTF-8"))
    try:
        text = (images_dir / transcript).read_bytes().decode("utf-8")
    except FileNotFoundError:
        return Row(index, name, problem=("missing_file", f"no transcript {transcript}"))
    except UnicodeDecodeError:
        return Row(index, name, problem=("non_utf8_text", f"{transcript} is not UTF-8"))
    return Row(index, name, text)
