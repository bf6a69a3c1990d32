"""Shard writing: byte for byte what `tarfile` writes with pinned headers, read back whole."""

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from textimg.data.shards import iter_shard, write_shard


def tarfile_bytes(samples) -> bytes:
    """The reference: tarfile in GNU format, every varying header field pinned."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for key, members in samples:
            for extension, data in members.items():
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "samples",
    [
        [],
        [("000000000", {"png": b"\x89PNG" * 300, "txt": b"hi", "json": b"{}"})],
        [(f"{i:09d}", {"txt": bytes(i * 97), "json": b"x" * 512}) for i in range(30)],
        [("k" * 120, {"txt": b"a name longer than a plain header holds"})],
        [("caf\u00e9-\u6587\u5b57", {"txt": "\u00e9".encode()})],
    ],
    ids=["empty", "one-sample", "block-edges", "long-name", "non-ascii"],
)
def test_shard_bytes_equal_tarfile_and_read_back(tmp_path: Path, samples):
    info = write_shard(tmp_path / "shard.tar", samples)
    written = (tmp_path / "shard.tar").read_bytes()
    assert written == tarfile_bytes(samples)
    assert (info.samples, info.bytes) == (len(samples), len(written))
    assert info.sha256 == hashlib.sha256(written).hexdigest()
    assert list(iter_shard(tmp_path / "shard.tar")) == samples
    assert not list(tmp_path.glob("*.tmp"))


def test_a_failing_sample_leaves_no_shard(tmp_path: Path):
    def samples():
        yield "000000000", {"txt": b"fine"}
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        write_shard(tmp_path / "shard.tar", samples())
    assert list(tmp_path.iterdir()) == []
