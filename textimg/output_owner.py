"""Who owns an output folder: the run whose results it holds, and the process writing it now.

Every command that writes a folder follows one rule: it replaces only what it wrote itself for
this same run (the same inputs and settings), which is how a stopped run continues, and refuses
anything else unless `--overwrite`. `score` and `eval` record their run in
`FOLDER/.textimg-run.json` before their first write, so a rerun can tell its own unfinished
results from another run's (`train` keeps that record as `config.json`, `synth` and `pack` as
their manifests). While a process writes, it holds the folder (`textimg.files.hold_folder`), so
a second writer is refused instead of interleaving with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from textimg.errors import TextimgError
from textimg.files import hold_folder, write_text_atomic

RECORD_NAME = ".textimg-run.json"


def _read_record(path: Path) -> Any:
    """The recorded run, or None when there is none; an unreadable record is nobody's run."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {"unreadable": str(path)}


def _differences(old: Any, new: dict[str, Any]) -> str:
    """The recorded settings that differ, for the refusal: what the user changed."""
    if not isinstance(old, dict):
        return "an unreadable record"
    changed = [key for key in sorted(new.keys() | old.keys()) if old.get(key) != new.get(key)]
    return ", ".join(f"{key} {old.get(key)!r}" for key in changed)


def claim_folder(
    folder: Path, run: dict[str, Any], products: Sequence[str], overwrite: bool
) -> None:
    """Record `run` as the owner of `folder`, refusing a folder that holds results it did not
    write (another run's record, or files matching `products` with no record) unless
    `overwrite`. The same run finds its own record and continues."""
    run = json.loads(json.dumps(run, default=str))  # as it reads back: tuples are lists
    record = folder / RECORD_NAME
    recorded = _read_record(record)
    if recorded != run and not overwrite:
        if recorded is not None:
            raise TextimgError(
                f"{folder} holds the results of another run ({_differences(recorded, run)}); "
                "pass --overwrite to replace them or choose another --out"
            )
        found = sorted(p.name for pattern in products for p in folder.glob(pattern))
        if found:
            raise TextimgError(
                f"{folder} already holds {found[0]}, which this run did not write; pass "
                "--overwrite to replace it or choose another --out"
            )
    if recorded != run:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(record, json.dumps(run, indent=2, ensure_ascii=False, default=str) + "\n")


@contextmanager
def hold_output(folder: Path) -> Iterator[None]:
    """Hold `folder` while this process writes it; under torchrun only rank 0 writes, so only
    rank 0 holds it (a refused rank 0 ends the job and torchrun stops the other ranks)."""
    from textimg.distributed import Placement

    main = Placement.from_environment().is_main
    with hold_folder(folder) if main else nullcontext():
        yield
