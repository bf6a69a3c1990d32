"""Files: a folder is written by one process at a time, and a killed holder never leaves it
locked."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from textimg.errors import TextimgError
from textimg.files import LOCK_NAME, hold_folder

HOLD = """
import sys, time
from textimg.files import hold_folder
with hold_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_naming_the_holder_until_the_holder_dies(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = pytest.raises(TextimgError, match=rf"is being written by pid {holder.pid} on ")
        with refused, hold_folder(folder):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (folder / LOCK_NAME).exists(), "a killed holder leaves its file, not its lock"
    with hold_folder(folder):
        assert "pid" in (folder / LOCK_NAME).read_text()
    assert not (folder / LOCK_NAME).exists(), "the holder removes its lock file when done"


def test_the_lock_is_per_folder_and_released_on_error(tmp_path: Path) -> None:
    with hold_folder(tmp_path / "a"), hold_folder(tmp_path / "b"):
        assert (tmp_path / "a" / LOCK_NAME).exists() and (tmp_path / "b" / LOCK_NAME).exists()
    with pytest.raises(RuntimeError), hold_folder(tmp_path / "a"):
        raise RuntimeError("a failed run")
    with hold_folder(tmp_path / "a"):
        pass
    with pytest.raises(RuntimeError), hold_folder(tmp_path / "new" / "out"):
        raise RuntimeError("refused before writing")
    assert (tmp_path / "new").is_dir() and not (tmp_path / "new" / "out").exists()
