"""Pack real images and their transcripts into WebDataset shards with a held-out test split.

A run has two passes. First every image is read, hashed and fully decoded, in parallel, so that
the whole plan (which rows are rejected and why, which bytes are duplicates, which key goes into
which shard of which split) is known before anything is written. The plan's fingerprint goes into
`manifest.json`; a rerun into the same directory recomputes it and resumes only when it matches,
so two runs with different inputs or options never mix. Then the shards are written in parallel,
one shard per job, each by `shards.write_shard` (temp name + rename, pinned headers), and the
manifest records every shard as it completes (img2dataset's "shard as unit of work"), so Ctrl-C
or SIGTERM loses at most the shards in flight and the same command resumes.

Output is the same for any number of workers: results are consumed in row order and every
decision is a pure function of the row, its bytes and the options.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image, ImageSequence, UnidentifiedImageError

from textimg.data.shards import (
    MANIFEST_NAME,
    ShardInfo,
    find_shards,
    iter_shard,
    read_manifest,
    shard_entry,
    shard_is_complete,
    shard_name,
    write_manifest,
    write_shard,
)
from textimg.errors import TextimgError
from textimg.files import TEMP_SUFFIX, write_text_atomic
from textimg.interrupt import Interrupted

MANIFEST_KIND = "pack"
TEST_SPLIT_NAME = "test_split.jsonl"
REJECTS_NAME = "rejects.jsonl"
SPLITS = ("train", "test")

REASONS = {
    "unreadable_row": "unreadable row",
    "non_utf8_text": "non-UTF-8 text",
    "missing_file": "missing file",
    "corrupt_image": "corrupt or truncated image",
    "unsupported_format": "unsupported image format",
    "empty_text": "empty transcript (--drop-empty)",
    "duplicate": "duplicate image",
}
"""Every reason a row or file can land in `rejects.jsonl` (code -> label), in checking order."""

FORMAT_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
"""Pillow format -> shard member extension. MPO is the multi-picture JPEG many phones write."""

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

TABLE_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}

ProgressCallback = Callable[[str, int, int], None]
"""Called as `(stage, done, total)` with stage "verify" or "write"."""


@dataclass(frozen=True)
class PackOptions:
    """Everything that shapes the output; all of it is saved in the manifest and fingerprinted."""

    image_col: str = "image"
    text_col: str = "text"
    test_fraction: float = 0.05
    seed: int = 0
    shard_size: int = 1000
    max_size: int | None = None
    drop_empty: bool = False

    def validate(self) -> None:
        """Refuse options that would make a meaningless or unwritable pack."""
        if not 0.0 <= self.test_fraction <= 1.0:
            raise TextimgError(f"--test-fraction must be between 0 and 1, got {self.test_fraction}")
        if self.shard_size < 1:
            raise TextimgError(f"--shard-size must be at least 1, got {self.shard_size}")
        if self.max_size is not None and self.max_size < 1:
            raise TextimgError(f"--max-size must be at least 1 pixel, got {self.max_size}")
        if self.image_col == self.text_col:
            raise TextimgError(f"--image-col and --text-col are both {self.image_col!r}")


@dataclass(frozen=True)
class Row:
    """One row of the transcripts (or one image of the sidecar layout), as read."""

    index: int | None
    image: str | None
    text: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class ImageCheck:
    """What verifying one image file found; `problem` is (reason, detail) when it is unusable."""

    sha256: str = ""
    size: int = 0
    extension: str = ""
    width: int = 0
    height: int = 0
    mode: str = ""
    problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class PlannedSample:
    """One sample as it will be written: where its bytes come from and its members."""

    key: str
    path: str
    sha256: str
    extension: str
    resize: tuple[int, int] | None
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ShardJob:
    """One shard to write: a unit of work for a worker and of resume for a rerun."""

    split: str
    number: int
    samples: tuple[PlannedSample, ...]

    @property
    def name(self) -> str:
        """The shard's file name, `train-000000.tar`."""
        return shard_name(self.split, self.number)


@dataclass
class PackResult:
    """What a run did, for the summary table and for tests."""

    out: Path
    rows: int
    train: int
    test: int
    rejected: dict[str, int]
    image_bytes: int
    shard_bytes: int
    shards_written: int
    shards_resumed: int
    seconds: float

    @property
    def packed(self) -> int:
        """Samples written, both splits."""
        return self.train + self.test


def pack(
    images_dir: Path,
    out: Path,
    transcripts: Path | None = None,
    options: PackOptions | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> PackResult:
    """Verify, split, dedupe and shard the images of `images_dir` into `out`; see module doc."""
    started = time.perf_counter()
    options = options or PackOptions()
    options.validate()
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise TextimgError(f"--workers must be at least 1, got {workers}")
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise TextimgError(f"images folder {images_dir} does not exist or is not a folder")
    out = Path(out)
    transcripts = Path(transcripts) if transcripts is not None else None
    rows = read_table(transcripts, options) if transcripts else read_sidecars(images_dir)
    report = progress or (lambda stage, done, total: None)
    rejects: list[dict[str, Any]] = []
    candidates: list[Row] = []
    for row in rows:
        problem = _row_problem(row, options)
        if problem is None:
            candidates.append(row)
        else:
            rejects.append(_reject(row.index, row.image, *problem))
    paths = [str(images_dir / str(row.image)) for row in candidates]

    manifest: dict[str, Any] | None = None
    try:
        with _parallel_map(workers) as parallel_map:
            checks = []
            for done, check in enumerate(parallel_map(check_image, paths), start=1):
                checks.append(check)
                report("verify", done, len(paths))
            jobs = _plan_shards(candidates, paths, checks, options, rejects)
            rejects.sort(key=lambda reject: (reject["row"] is None, reject["row"] or 0))
            fingerprint = _fingerprint(options, jobs, rejects)
            existing = _claim_output(out, fingerprint, options)
            manifest = _manifest(images_dir, transcripts, options, fingerprint, jobs, rejects)
            manifest["shards"] = {
                name: entry
                for name, entry in existing.items()
                if shard_is_complete(out, name, entry) and name in manifest["planned_shards"]
            }
            write_manifest(out, manifest)
            write_text_atomic(out / REJECTS_NAME, "".join(map(_rejects_line, rejects)))
            write_text_atomic(out / TEST_SPLIT_NAME, _test_split_text(jobs))

            todo = [job for job in jobs if job.name not in manifest["shards"]]
            written = 0
            report("write", 0, len(todo))
            for job, info in zip(
                todo, parallel_map(_write_job, [(out, job) for job in todo]), strict=True
            ):
                manifest["shards"][job.name] = shard_entry(info)
                write_manifest(out, manifest)
                written += 1
                report("write", written, len(todo))
            manifest["complete"] = True
            write_manifest(out, manifest)
    except KeyboardInterrupt:
        raise Interrupted(_stopped_line(out, manifest)) from None

    counts = manifest["counts"]
    return PackResult(
        out=out,
        rows=counts["rows"],
        train=counts["train"],
        test=counts["test"],
        rejected=counts["rejected"],
        image_bytes=manifest["image_bytes"],
        shard_bytes=sum(entry["bytes"] for entry in manifest["shards"].values()),
        shards_written=written,
        shards_resumed=len(jobs) - written,
        seconds=time.perf_counter() - started,
    )


def _stopped_line(out: Path, manifest: dict[str, Any] | None) -> str:
    """What an interrupted run kept: the shards its manifest records (each written whole)."""
    if manifest is None:
        return "stopped while verifying images, before writing anything; the same command resumes"
    done, planned = len(manifest["shards"]), len(manifest["planned_shards"])
    return (
        f"{done} of {planned} shards are written and recorded in {out / MANIFEST_NAME}; "
        "the same command resumes"
    )


def default_workers() -> int:
    """The cores this process may use (not the machine's total, which ignores CPU affinity)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def _parallel_map(workers: int) -> Iterator[Callable[..., Iterable[Any]]]:
    """An ordered `map` over `workers` threads, or the builtin one for a single worker.

    Threads, not processes: nearly all the work (Pillow's decoders, sha256, reading and writing
    files, fsync) runs in C with the GIL released, so two threads verify 1.8x as fast as one
    (`benchmarks/pack.py`), and they start at once, where each spawned process first paid
    ~0.1-0.2 s to start an interpreter and import the main module (a sixth of a 400-image run
    on 2 cores), and nothing is pickled. Results come back in input order, so output never
    depends on the worker count.
    """
    if workers == 1:
        yield map
        return
    executor = ThreadPoolExecutor(max_workers=workers)
    try:
        yield executor.map
    except BaseException:
        # Ctrl-C or an error: jobs not yet started never start, so the run stops within one
        # job per worker instead of finishing every queued image or shard first.
        executor.shutdown(cancel_futures=True)
        raise
    executor.shutdown()


# ---------------------------------------------------------------------------------------------
# Reading rows


def read_table(path: Path, options: PackOptions) -> list[Row]:
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
    for column, flag in ((options.image_col, "--image-col"), (options.text_col, "--text-col")):
        if records and column not in present:
            names = ", ".join(sorted(present)) or "none"
            raise TextimgError(
                f"{path} has no column {column!r} (columns: {names}); choose one with {flag}"
            )
    return [_row_from_record(index, record, options) for index, record in enumerate(records)]


def _read_jsonl(path: Path) -> list[Any]:
    """Records of a JSONL file, line by line: pandas reads JSONL all-or-nothing, and one bad line
    must reject only its own row. A bad line becomes an `_Unreadable` record in its place."""
    records: list[Any] = []
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
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


def _row_from_record(index: int, record: Any, options: PackOptions) -> Row:
    """A `Row` from one parsed record; any unusable value becomes the row's `problem`."""
    if isinstance(record, _Unreadable):
        return Row(index, None, problem=("unreadable_row", record.detail))
    if not isinstance(record, dict):
        return Row(index, None, problem=("unreadable_row", "not a JSON object"))
    values = {str(name): _plain(value) for name, value in record.items()}
    image, text = values.pop(options.image_col, None), values.pop(options.text_col, None)
    if not isinstance(image, str) or not image:
        return Row(index, None, problem=("unreadable_row", f"no {options.image_col} path"))
    for name, value in [(options.image_col, image), (options.text_col, text), *values.items()]:
        if isinstance(value, str) and not _is_utf8(value):
            return Row(index, image, problem=("non_utf8_text", f"{name} is not UTF-8"))
    relative = PurePosixPath(image)
    if relative.is_absolute() or ".." in relative.parts:
        problem = ("unreadable_row", "image path must be relative to IMAGES_DIR and inside it")
        return Row(index, image, problem=problem)
    if not isinstance(text, str):
        detail = f"{options.text_col} is {'missing' if text is None else type(text).__name__}"
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


def _is_utf8(text: str) -> bool:
    """False for strings holding surrogates (undecodable bytes, or lone `\\udXXX` in JSON)."""
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
    if not _is_utf8(name):
        return Row(index, None, problem=("unreadable_row", "file name is not UTF-8"))
    try:
        text = (images_dir / transcript).read_bytes().decode("utf-8")
    except FileNotFoundError:
        return Row(index, name, problem=("missing_file", f"no transcript {transcript}"))
    except UnicodeDecodeError:
        return Row(index, name, problem=("non_utf8_text", f"{transcript} is not UTF-8"))
    return Row(index, name, text)


# ---------------------------------------------------------------------------------------------
# Verifying images (runs in worker processes)


def check_image(path: str) -> ImageCheck:
    """Read, hash and fully decode one image (every frame), detecting its format from the bytes.

    Any exception from a decoder means the image is unusable, whatever its type, so all are caught.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return ImageCheck(problem=("missing_file", error.strerror or str(error)))
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, width, height, mode = image.format, image.width, image.height, image.mode
            for frame in ImageSequence.Iterator(image):
                frame.load()
    except UnidentifiedImageError:  # its message holds a memory address: not reproducible
        return ImageCheck(digest, len(data), problem=("corrupt_image", "not an image Pillow reads"))
    except Exception as error:
        return ImageCheck(digest, len(data), problem=("corrupt_image", f"{error}"))
    extension = FORMAT_EXTENSIONS.get(image_format or "")
    if extension is None:
        return ImageCheck(digest, len(data), problem=("unsupported_format", f"{image_format}"))
    return ImageCheck(digest, len(data), extension, width, height, mode)


# ---------------------------------------------------------------------------------------------
# Planning


def _row_problem(row: Row, options: PackOptions) -> tuple[str, str] | None:
    """(reason, detail) when a row is rejected before its image is read, else None.

    A whitespace-only transcript counts as empty: the STR service read no text in the image.
    """
    if row.problem is None and options.drop_empty and not (row.text or "").strip():
        return ("empty_text", "transcript is empty and --drop-empty is set")
    return row.problem


def _plan_shards(
    rows: list[Row],
    paths: list[str],
    checks: list[ImageCheck],
    options: PackOptions,
    rejects: list[dict[str, Any]],
) -> list[ShardJob]:
    """Turn verified rows into shard jobs, rejecting bad images and duplicate bytes."""
    first_with_bytes: dict[str, str] = {}
    by_split: dict[str, list[PlannedSample]] = {split: [] for split in SPLITS}
    for row, path, check in zip(rows, paths, checks, strict=True):
        image = row.image or ""
        if check.problem is not None:
            rejects.append(_reject(row.index, image, *check.problem))
            continue
        if check.sha256 in first_with_bytes:
            detail = f"same bytes as {first_with_bytes[check.sha256]}"
            rejects.append(_reject(row.index, image, "duplicate", detail))
            continue
        first_with_bytes[check.sha256] = image
        split = split_of(image, options.seed, options.test_fraction)
        by_split[split].append(_planned_sample(row, path, check, split, options.max_size))
    return [
        ShardJob(split, number, tuple(samples[start : start + options.shard_size]))
        for split, samples in by_split.items()
        for number, start in enumerate(range(0, len(samples), options.shard_size))
    ]


def split_of(image: str, seed: int, test_fraction: float) -> str:
    """ "test" or "train" from a hash of the image path and seed alone, so adding rows later never
    moves an old row between splits."""
    digest = hashlib.sha256(f"{seed}\x00{image}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") < test_fraction * 2**64 else "train"


def sample_key(image: str) -> str:
    """A short hash of the image path: stable when rows are added or reordered, and dot-free."""
    return hashlib.sha256(image.encode()).hexdigest()[:16]


def _planned_sample(
    row: Row, path: str, check: ImageCheck, split: str, max_size: int | None
) -> PlannedSample:
    """The sample for one verified row, with its `.json` metadata and any resize decided."""
    image = row.image or ""
    metadata: dict[str, Any] = {
        "image": image,
        "width": check.width,
        "height": check.height,
        "mode": check.mode,
        "format": check.extension,
        "bytes": check.size,
        "sha256": check.sha256,
        "split": split,
        "columns": row.columns,
    }
    resize = resized_size(check.width, check.height, max_size)
    extension = check.extension
    if resize is not None:
        extension = REENCODE_EXTENSION[check.extension]
        metadata["resized"] = {
            "width": check.width,
            "height": check.height,
            "format": check.extension,
            "mode": check.mode,
        }
        metadata.update(
            width=resize[0],
            height=resize[1],
            format=extension,
            mode=reencode_mode(check.mode, extension),
        )
    return PlannedSample(
        sample_key(image), path, check.sha256, extension, resize, row.text or "", metadata
    )


def _reject(row: int | None, image: str | None, reason: str, detail: str) -> dict[str, Any]:
    """One line of `rejects.jsonl`."""
    return {"row": row, "image": image, "reason": reason, "detail": detail}


def _rejects_line(reject: dict[str, Any]) -> str:
    # ASCII escapes: a reject may carry the undecodable bytes that got it rejected.
    return json.dumps(reject, sort_keys=True) + "\n"


def _test_split_text(jobs: list[ShardJob]) -> str:
    """`test_split.jsonl`: the held-out transcripts that `textimg eval` uses as prompts."""
    return "".join(
        json.dumps({"key": s.key, "text": s.text, "image": s.metadata["image"]}, ensure_ascii=False)
        + "\n"
        for job in jobs
        if job.split == "test"
        for s in job.samples
    )


# ---------------------------------------------------------------------------------------------
# Resizing


REENCODE_EXTENSION = {"jpg": "jpg", "png": "png", "webp": "webp", "gif": "png"}
"""A resized image keeps its format, except GIF: only its first frame is kept, as PNG."""

_PILLOW_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"jpg": {"quality": 95}, "webp": {"quality": 95}}
_KEPT_MODES = {
    "jpg": ("L", "RGB", "CMYK"),
    "png": ("L", "LA", "RGB", "RGBA"),
    "webp": ("RGB", "RGBA"),
}


def resized_size(width: int, height: int, max_size: int | None) -> tuple[int, int] | None:
    """The size an image is shrunk to so its longer side is `max_size`, or None if it fits."""
    if max_size is None or max(width, height) <= max_size:
        return None
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def reencode_mode(mode: str, extension: str) -> str:
    """The mode a resized image is saved in: its own where the format can hold it, else the
    nearest one that keeps any alpha (palettes become RGBA so resampling can blend)."""
    if mode in _KEPT_MODES[extension]:
        return mode
    alpha = "A" in mode or mode == "P"
    return "RGBA" if alpha and extension != "jpg" else "RGB"


def reencode(data: bytes, size: tuple[int, int], extension: str) -> bytes:
    """The image `data` shrunk to `size` with Lanczos and saved as `extension`."""
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert(reencode_mode(image.mode, extension))
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, _PILLOW_FORMAT[extension], **_SAVE_OPTIONS.get(extension, {}))
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Writing


def _write_job(arguments: tuple[Path, ShardJob]) -> ShardInfo:
    """Write one shard (runs in a worker); see `_job_samples`."""
    out, job = arguments
    return write_shard(out / job.name, _job_samples(job))


def _job_samples(job: ShardJob) -> Iterator[tuple[str, dict[str, bytes]]]:
    """The samples of one shard, each image re-read and checked against its verified hash so a
    file changed since verification can never slip into a shard."""
    for sample in job.samples:
        data = Path(sample.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != sample.sha256:
            raise TextimgError(f"{sample.path} changed while packing; run again to pack it")
        if sample.resize is not None:
            data = reencode(data, sample.resize, sample.extension)
        metadata = json.dumps(sample.metadata, ensure_ascii=False, sort_keys=True)
        members = {
            sample.extension: data,
            "txt": sample.text.encode("utf-8"),
            "json": metadata.encode("utf-8"),
        }
        yield sample.key, members


def _fingerprint(options: PackOptions, jobs: list[ShardJob], rejects: list[dict[str, Any]]) -> str:
    """A hash of everything the output depends on: options, every sample and every reject."""
    digest = hashlib.sha256(json.dumps(asdict(options), sort_keys=True).encode())
    for job in jobs:
        for s in job.samples:
            entry = [job.name, s.key, s.sha256, s.text, s.metadata]
            digest.update(json.dumps(entry, sort_keys=True).encode())
    digest.update(json.dumps(rejects, sort_keys=True).encode())
    return digest.hexdigest()


def _claim_output(out: Path, fingerprint: str, options: PackOptions) -> dict[str, Any]:
    """The shard entries of a matching earlier run in `out` (empty for a fresh directory).

    Refuses a directory holding anything else: another pack's shards, another kind of corpus, or
    files without a manifest, so a rerun never mixes two runs.
    """
    if out.exists() and not out.is_dir():
        raise TextimgError(f"--out {out} is a file, not a folder")
    manifest = read_manifest(out)
    if manifest is None:
        if out.exists() and any(not p.name.endswith(TEMP_SUFFIX) for p in out.iterdir()):
            raise TextimgError(
                f"{out} is not empty and has no {MANIFEST_NAME}; pack into a new or empty folder"
            )
        out.mkdir(parents=True, exist_ok=True)
        return {}
    if manifest.get("kind") != MANIFEST_KIND:
        raise TextimgError(f"{out} holds a corpus that `textimg pack` did not make; use another")
    if manifest.get("fingerprint") != fingerprint:
        saved = manifest.get("options", {})
        changed = sorted(
            name for name, value in asdict(options).items() if saved.get(name) != value
        )
        what = f"other options ({', '.join(changed)})" if changed else "other inputs"
        raise TextimgError(
            f"{out} holds a pack made from {what}; pack into a new folder or delete {out}"
        )
    return manifest.get("shards", {})


def _manifest(
    images_dir: Path,
    transcripts: Path | None,
    options: PackOptions,
    fingerprint: str,
    jobs: list[ShardJob],
    rejects: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of a run before any shard is written (`complete` false, no shards yet)."""
    counts = {split: sum(len(j.samples) for j in jobs if j.split == split) for split in SPLITS}
    rejected = Counter(reject["reason"] for reject in rejects)
    return {
        "kind": MANIFEST_KIND,
        "version": 1,
        "fingerprint": fingerprint,
        "options": asdict(options),
        "inputs": {
            "images_dir": str(images_dir.resolve()),
            "transcripts": str(transcripts.resolve()) if transcripts else None,
        },
        "counts": {
            "rows": counts["train"] + counts["test"] + len(rejects),
            **counts,
            "rejected": {reason: rejected[reason] for reason in REASONS if rejected[reason]},
        },
        "image_bytes": sum(s.metadata["bytes"] for job in jobs for s in job.samples),
        "planned_shards": [job.name for job in jobs],
        "shards": {},
        "complete": False,
    }


# ---------------------------------------------------------------------------------------------
# Reading packed output


def load_packed_texts(directory: Path) -> list[str]:
    """The non-empty transcripts of a pack's train shards, in shard order, so `textimg synth
    --text-from DIR` draws texts from the real data without touching the held-out split."""
    shards = [path for path in find_shards(directory) if path.name.startswith("train-")]
    if not shards:
        raise TextimgError(f"{directory} has no train shards (train-*.tar) from `textimg pack`")
    texts = []
    for shard in shards:
        for _, members in iter_shard(shard):
            text = members.get("txt", b"").decode("utf-8")
            if text.strip():
                texts.append(text)
    return texts
