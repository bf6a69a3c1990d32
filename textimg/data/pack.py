"""Pack real images and their transcripts into WebDataset shards with a held-out test split.

A run has two passes. First every image is read, hashed and fully decoded, in parallel
(`image_checks.verify_images`), so that the whole plan (which rows are rejected and why, which
bytes are duplicates, which key goes into which shard of which split) is known before anything is
written. The plan's fingerprint goes into `manifest.json`; a rerun into the same directory
recomputes it and resumes only when it matches, so two runs with different inputs or options
never mix. Then the shards are written as a `shard_job.ShardJob` on worker threads, one shard per
unit, each by `shards.write_shard` (temp name + rename, pinned headers), and the manifest records
every shard as it completes, so Ctrl-C or SIGTERM loses at most the shards in flight and the
same command resumes.

Output is the same for any number of workers: every decision is a pure function of the row, its
bytes and the options, and each shard's bytes of its planned samples alone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from textimg.data.image_checks import (
    REENCODE_EXTENSION,
    ImageCheck,
    reencode,
    reencode_mode,
    resized_size,
    verify_images,
)
from textimg.data.pack_sources import Row, read_sidecars, read_table
from textimg.data.shard_job import (
    OnShard,
    ShardJob,
    WorkerPool,
    check_stop,
    claim_output,
    default_workers,
)
from textimg.data.shards import (
    MANIFEST_NAME,
    ShardInfo,
    find_shards,
    iter_shard,
    shard_entry,
    shard_name,
    write_shard,
)
from textimg.errors import TextimgError
from textimg.files import write_text_atomic
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


VERIFY_STOPPED = "stopped while verifying images, before writing anything; the same command resumes"

VerifyProgress = Callable[[int, int], None]
"""Called as `(done, total)` as images are verified."""


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
class PlannedShard:
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
    on_verified: VerifyProgress | None = None,
    on_shard: OnShard | None = None,
) -> PackResult:
    """Verify, split, dedupe and shard the images of `images_dir` into `out`; see module doc.

    `on_verified(done, total)` follows the verifying pass, `on_shard` the shards as the job
    records them (kept from an earlier run first, then each written)."""
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
    if transcripts:
        rows = read_table(transcripts, options.image_col, options.text_col)
    else:
        rows = read_sidecars(images_dir)
    rejects: list[dict[str, Any]] = []
    candidates: list[Row] = []
    for row in rows:
        problem = _row_problem(row, options)
        if problem is None:
            candidates.append(row)
        else:
            rejects.append(_reject(row.index, row.image, *problem))
    paths = [str(images_dir / str(row.image)) for row in candidates]
    try:
        checks = verify_images(paths, workers, on_verified)
    except KeyboardInterrupt:
        raise Interrupted(VERIFY_STOPPED) from None
    planned = _plan_shards(candidates, paths, checks, options, rejects)
    rejects.sort(key=lambda reject: (reject["row"] is None, reject["row"] or 0))
    fingerprint = _fingerprint(options, planned, rejects)
    header = _manifest(images_dir, transcripts, options, fingerprint, planned, rejects)
    job: ShardJob[tuple[Path, PlannedShard], ShardInfo] = ShardJob(
        out, MANIFEST_NAME, header, header["planned_shards"], on_shard
    )
    with job.stopping():
        todo = job.keep_finished(claim_output(out, _another_run(out, fingerprint, options), "*"))
        write_text_atomic(out / REJECTS_NAME, "".join(map(_rejects_line, rejects)))
        write_text_atomic(out / TEST_SPLIT_NAME, _test_split_text(planned))
        left = set(todo)
        units = [(out, shard) for shard in planned if shard.name in left]
        job.run(units, _write_job, WorkerPool(workers), _recorded_as)
        job.manifest["complete"] = True
        job.write_manifest()

    manifest = job.manifest
    counts = manifest["counts"]
    return PackResult(
        out=out,
        rows=counts["rows"],
        train=counts["train"],
        test=counts["test"],
        rejected=counts["rejected"],
        image_bytes=manifest["image_bytes"],
        shard_bytes=sum(entry["bytes"] for entry in manifest["shards"].values()),
        shards_written=len(todo),
        shards_resumed=len(planned) - len(todo),
        seconds=time.perf_counter() - started,
    )


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
) -> list[PlannedShard]:
    """Turn verified rows into planned shards, rejecting bad images and duplicate bytes."""
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
        PlannedShard(split, number, tuple(samples[start : start + options.shard_size]))
        for split, samples in by_split.items()
        for number, start in enumerate(range(0, len(samples), options.shard_size))
    ]


def split_of(image: str, seed: int, test_fraction: float) -> str:
    """ "test" or "train" from a hash of the image path and seed alone, so adding rows later never
    moves an old row between splits."""
    digest = hashlib.sha256(f"{seed}\x00{image}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") < test_fraction * 2**64 else "train"


def key_for_image_path(image: str) -> str:
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
        key_for_image_path(image), path, check.sha256, extension, resize, row.text or "", metadata
    )


def _reject(row: int | None, image: str | None, reason: str, detail: str) -> dict[str, Any]:
    """One line of `rejects.jsonl`."""
    return {"row": row, "image": image, "reason": reason, "detail": detail}


def _rejects_line(reject: dict[str, Any]) -> str:
    # ASCII escapes: a reject may carry the undecodable bytes that got it rejected.
    return json.dumps(reject, sort_keys=True) + "\n"


def _test_split_text(planned: list[PlannedShard]) -> str:
    """`test_split.jsonl`: the held-out transcripts that `textimg eval` uses as prompts."""
    return "".join(
        json.dumps({"key": s.key, "text": s.text, "image": s.metadata["image"]}, ensure_ascii=False)
        + "\n"
        for shard in planned
        if shard.split == "test"
        for s in shard.samples
    )


# ---------------------------------------------------------------------------------------------
# Writing


def _write_job(arguments: tuple[Path, PlannedShard]) -> ShardInfo:
    """Write one shard (runs in a worker thread); see `_shard_samples`."""
    out, shard = arguments
    return write_shard(out / shard.name, _shard_samples(shard))


def _recorded_as(unit: tuple[Path, PlannedShard], info: ShardInfo) -> tuple[str, dict[str, Any]]:
    """A written shard's name and manifest entry."""
    return unit[1].name, shard_entry(info)


def _shard_samples(shard: PlannedShard) -> Iterator[tuple[str, dict[str, bytes]]]:
    """The samples of one shard, each image re-read and checked against its verified hash so a
    file changed since verification can never slip into a shard."""
    for sample in shard.samples:
        check_stop()
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


def _fingerprint(
    options: PackOptions, planned: list[PlannedShard], rejects: list[dict[str, Any]]
) -> str:
    """A hash of everything the output depends on: options, every sample and every reject."""
    digest = hashlib.sha256(json.dumps(asdict(options), sort_keys=True).encode())
    for shard in planned:
        for s in shard.samples:
            entry = [shard.name, s.key, s.sha256, s.text, s.metadata]
            digest.update(json.dumps(entry, sort_keys=True).encode())
    digest.update(json.dumps(rejects, sort_keys=True).encode())
    return digest.hexdigest()


def _another_run(out: Path, fingerprint: str, options: PackOptions):
    """Why a manifest in `out` belongs to another run than this plan's, or None: another kind of
    corpus, or a pack of other options or inputs (its fingerprint differs)."""

    def foreign(manifest: dict[str, Any]) -> str | None:
        if manifest.get("kind") != MANIFEST_KIND:
            return f"{out} holds a corpus that `textimg pack` did not make; use another"
        if manifest.get("fingerprint") == fingerprint:
            return None
        saved = manifest.get("options", {})
        changed = sorted(
            name for name, value in asdict(options).items() if saved.get(name) != value
        )
        what = f"other options ({', '.join(changed)})" if changed else "other inputs"
        return f"{out} holds a pack made from {what}; pack into a new folder or delete {out}"

    return foreign


def _manifest(
    images_dir: Path,
    transcripts: Path | None,
    options: PackOptions,
    fingerprint: str,
    planned: list[PlannedShard],
    rejects: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of a run before any shard is written (`complete` false, no shards yet)."""
    counts = {split: sum(len(p.samples) for p in planned if p.split == split) for split in SPLITS}
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
        "image_bytes": sum(s.metadata["bytes"] for shard in planned for s in shard.samples),
        "planned_shards": [shard.name for shard in planned],
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
