"""WebDataset shards: deterministic, atomic writing and plain reading.

A shard is a plain tar whose samples are consecutive members `KEY.<ext>` (KEY has no dots, so
`webdataset` splits it correctly). Writing goes to `NAME.tar.tmp` and is renamed to `NAME.tar` only
when the tar is complete and flushed, so a kill never leaves a half shard under a final name. Every
tar header is pinned (mtime 0, uid/gid 0, no user names) so the same samples give the same bytes.

A corpus directory also holds `manifest.json`: the config that made it and, per shard, its sample
count, byte size and sha256. The manifest entry is what marks a shard as complete and verified.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textimg.errors import TextimgError
from textimg.files import atomic_path, write_text_atomic

if TYPE_CHECKING:
    from PIL import Image

MANIFEST_NAME = "manifest.json"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif")

Sample = tuple[str, dict[str, bytes]]
"""A sample as written and read: its key and its members by extension (`"png"`, `"txt"`, ...)."""


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records about one complete shard."""

    samples: int
    bytes: int
    sha256: str


def shard_name(prefix: str, index: int) -> str:
    """`synth-000042.tar`: zero-padded so shards sort in order and brace-expand in webdataset."""
    return f"{prefix}-{index:06d}.tar"


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


TAR_BLOCK = 512
TAR_RECORD = 20 * TAR_BLOCK
"""tarfile's sizes: members pad to blocks, the archive (ended by two zero blocks) to records."""
FAST_NAME_LIMIT = 100
FAST_SIZE_LIMIT = 8**11
"""Names and sizes that fit a plain header: longer ones need GNU extension blocks (tarfile's)."""


def _pinned_member(name: str, size: int) -> tarfile.TarInfo:
    """A member header with every field that varies between machines or runs pinned."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@lru_cache(maxsize=1)
def _header_template() -> bytes:
    """tarfile's own GNU header for an empty name and size: `_member_header` fills in the rest."""
    return _pinned_member("", 0).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def _member_header(name: str, size: int) -> bytes:
    """The GNU tar header tarfile writes for a pinned member, built from a template in a few
    microseconds (tarfile takes ~25; three members a sample made it a tenth of synth's time).

    Only the name, size and checksum differ between members; the checksum is the byte sum of the
    header with its own field read as spaces, written as tarfile does (6 octal digits, NUL, space).
    """
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > FAST_NAME_LIMIT or size >= FAST_SIZE_LIMIT:
        return _pinned_member(name, size).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    header = bytearray(_header_template())
    header[: len(encoded)] = encoded
    header[124:136] = b"%011o\0" % size
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    return bytes(header)


def write_shard(path: Path, samples: Iterable[Sample]) -> ShardInfo:
    """Write `samples` to the tar `path` atomically and return its manifest entry.

    Members are written in the order given, with pinned headers, into `path.tmp`; the file is
    fsynced and renamed only at the end. If anything fails the temp file is removed. The bytes
    are exactly those of `tarfile` in GNU format (the tests compare them), hashed as written.
    """
    count = 0
    written = 0
    digest = hashlib.sha256()
    with atomic_path(path) as temp, open(temp, "wb") as raw:

        def put(data: bytes) -> None:
            nonlocal written
            raw.write(data)
            digest.update(data)
            written += len(data)

        for key, members in samples:
            if "." in key or "/" in key:
                raise ValueError(f"shard keys may not contain '.' or '/': {key!r}")
            for extension, data in members.items():
                put(_member_header(f"{key}.{extension}", len(data)))
                put(data)
                put(bytes(-len(data) % TAR_BLOCK))
            count += 1
        end = written + 2 * TAR_BLOCK
        put(bytes(2 * TAR_BLOCK + -end % TAR_RECORD))
        raw.flush()
        os.fsync(raw.fileno())
    return ShardInfo(samples=count, bytes=written, sha256=digest.hexdigest())


def iter_shard(path: Path) -> Iterator[Sample]:
    """Yield the samples of one tar shard, grouping consecutive members by key."""
    key: str | None = None
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                member_key, _, extension = name.partition(".")
                if member_key != key:
                    if key is not None:
                        yield key, members
                    key, members = member_key, {}
                handle = tar.extractfile(member)
                members[extension] = handle.read() if handle else b""
    except (tarfile.TarError, OSError) as error:
        raise TextimgError(f"cannot read shard {path}: {error}") from None
    if key is not None:
        yield key, members


def find_shards(source: Path | str) -> list[Path]:
    """The shard files a user pointed at: a directory (all its `.tar`), one tar, or a glob."""
    source_path = Path(source)
    if source_path.is_dir():
        shards = sorted(source_path.glob("*.tar"))
    elif source_path.is_file():
        shards = [source_path]
    else:
        shards = sorted(Path(p) for p in glob.glob(str(source)) if p.endswith(".tar"))
    if not shards:
        raise TextimgError(f"no shards found at {source}")
    return shards


def iter_samples(sources: Iterable[Path | str]) -> Iterator[Sample]:
    """Yield every sample of every shard under `sources`, in shard order."""
    for source in sources:
        for shard in find_shards(source):
            yield from iter_shard(shard)


def image_member(members: dict[str, bytes]) -> tuple[str, bytes] | None:
    """The first image member of a sample as (extension, bytes), or None if it has none."""
    for extension in (ext.lstrip(".") for ext in IMAGE_EXTENSIONS):
        if extension in members:
            return extension, members[extension]
    return None


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The corpus manifest of `directory`, or None when there is none yet."""
    path = Path(directory) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as error:
        raise TextimgError(f"{path} is not a readable manifest: {error}") from None


def write_manifest(directory: Path, manifest: dict[str, Any], name: str = MANIFEST_NAME) -> None:
    """Write a manifest atomically (temp name, then rename), keys sorted for stable diffs.

    `name` lets one part of a split run write its own `manifest-A-B.json`."""
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_text_atomic(Path(directory) / name, text)


def shard_entry(info: ShardInfo) -> dict[str, Any]:
    """The JSON form of a `ShardInfo` as stored under `manifest["shards"][name]`."""
    return asdict(info)


def shard_is_complete(directory: Path, name: str, entry: dict[str, Any] | None) -> bool:
    """True when shard `name` exists with the size and sha256 its manifest entry promises."""
    path = Path(directory) / name
    if entry is None or not path.exists() or path.stat().st_size != entry.get("bytes"):
        return False
    return sha256_file(path) == entry.get("sha256")


def open_member_image(data: bytes) -> Image.Image:
    """A shard member's image, loaded, at 8 bits a channel; an image that cannot be decoded, or
    that is too large to decode safely (Pillow's decompression-bomb limit), raises `ValueError`
    naming why."""
    from PIL import Image

    from textimg.images import to_eight_bit

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.seek(0)  # the first frame of an animated image
            opened.load()
            return to_eight_bit(opened)
    except Image.DecompressionBombError as error:
        raise ValueError(f"too large to decode safely ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"not a readable image ({error})") from None


@dataclass(frozen=True)
class Skipped:
    """A sample left out of a listing: which shard, which key, and why."""

    shard: Path
    key: str
    reason: str


def preview_samples(
    sources: Iterable[Path | str], limit: int
) -> tuple[list[tuple[Image.Image, str]], list[Skipped]]:
    """The first `limit` (image, transcript) pairs of any textimg shards (synthetic or packed),
    and the samples whose image could not be decoded (the rest are still shown)."""
    items: list[tuple[Image.Image, str]] = []
    skipped: list[Skipped] = []
    for source in sources:
        for shard in find_shards(source):
            for key, members in iter_shard(shard):
                found = image_member(members)
                if found is None:
                    continue
                try:
                    image = open_member_image(found[1])
                except ValueError as error:
                    skipped.append(Skipped(shard, key, str(error)))
                    continue
                items.append((image, members.get("txt", b"").decode("utf-8", errors="replace")))
                if len(items) >= limit:
                    return items, skipped
    return items, skipped
