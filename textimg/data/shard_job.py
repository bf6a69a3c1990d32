"""Resumable shard jobs: the one way `synth` and `pack` fill an output folder with shards.

A shard is the unit of work and of resumption (img2dataset's "shard as unit of work"). A job
claims its output folder (refusing one that holds another corpus or unmanifested files), keeps
the shards an earlier run finished whose bytes still match their manifest entries, runs the rest
as units on a worker pool, and records each shard in the manifest, atomically, as soon as it
finishes, in whatever order they finish. Ctrl-C or SIGTERM asks every worker to drop its shard
between two samples (`check_stop`; a shard cut short never keeps its final name), records the
shards that finished meanwhile, and stops with one line: how many shards are recorded where,
and that the same command resumes.

Workers are threads for work that runs in C with the GIL released (`pack`'s decoders, sha256,
file I/O) and spawned processes for work in Python (`synth`'s layout); a process receives the
job's `setup` once, not with every unit, and reads it with `worker_setup()`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Generic, TypeVar

from textimg.data.shards import shard_is_complete, write_manifest
from textimg.errors import TextimgError
from textimg.files import LOCK_NAME, TEMP_SUFFIX, check_output_dir
from textimg.interrupt import Interrupted, deferred, signals_interrupt

MANIFEST_PATTERN = "manifest*.json"
"""`manifest.json` and the part manifests `manifest-A-B.json` of a split run."""

Unit = TypeVar("Unit")
Result = TypeVar("Result")


def default_workers() -> int:
    """The cores this process may use (not the machine's total, which ignores CPU affinity):
    what `--workers 0` means."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# The output folder


def read_manifests(directory: Path) -> list[dict[str, Any]]:
    """Every manifest in `directory` (whole and part), in name order."""
    manifests = []
    for path in sorted(Path(directory).glob(MANIFEST_PATTERN)):
        try:
            manifests.append(json.loads(path.read_text()))
        except (json.JSONDecodeError, OSError) as error:
            raise TextimgError(f"{path} is not a readable manifest: {error}") from None
    return manifests


ForeignCheck = Callable[[dict[str, Any]], str | None]
"""Why a manifest found in the output folder belongs to a different run (the error), or None."""


def check_output(directory: Path, foreign: ForeignCheck, strays: str) -> list[dict[str, Any]]:
    """Refuse an output that is not a writable folder, whose manifests belong to a different
    run, or that has no manifest but holds files matching `strays` (`*.tar` for synth, `*` for
    pack, which writes more than shards), so two runs never mix; return its manifests. Writes
    nothing.
    """
    directory = Path(directory)
    check_output_dir(directory)
    if not directory.is_dir():
        return []
    manifests = read_manifests(directory)
    for manifest in manifests:
        reason = foreign(manifest)
        if reason:
            raise TextimgError(reason)
    if not manifests:
        found = sorted(
            p.name
            for p in directory.glob(strays)
            if not p.name.endswith(TEMP_SUFFIX) and p.name != LOCK_NAME  # a run writing there
        )
        if found:
            raise TextimgError(
                f"{directory} is not empty ({found[0]}) and has no textimg manifest; "
                "choose a new or empty folder"
            )
    return manifests


def claim_output(directory: Path, foreign: ForeignCheck, strays: str) -> dict[str, dict[str, Any]]:
    """`check_output`, then create the folder, remove temp files a killed run left, and return
    the shard entries its manifests record (those a rerun may keep)."""
    manifests = check_output(directory, foreign, strays)
    directory.mkdir(parents=True, exist_ok=True)
    for temp in directory.glob(f"*{TEMP_SUFFIX}"):
        temp.unlink(missing_ok=True)
    recorded: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        recorded.update(manifest.get("shards", {}))
    return recorded


# ---------------------------------------------------------------------------------------------
# Workers


class ShardStopped(KeyboardInterrupt):
    """A worker abandoned its shard because the run is stopping; its temp file is already gone.

    A `KeyboardInterrupt`, so the parent's one stop path handles it like its own Ctrl-C."""


class _Worker:
    """What a worker sees: the job's setup and how it learns to stop: the parent's event, or a
    signal sent to a worker process itself (Ctrl-C in a terminal reaches the whole group)."""

    setup: Any = None
    event: Any = None
    signalled = False


def worker_setup() -> Any:
    """The `setup` of the pool this unit runs on."""
    return _Worker.setup


def check_stop() -> None:
    """Raise `ShardStopped` when the run is stopping: a unit calls it between two samples."""
    if _Worker.signalled or (_Worker.event is not None and _Worker.event.is_set()):
        raise ShardStopped


def _note_signal(number: int, frame: Any) -> None:
    # Only a flag: the sample loop checks it, so the shard's temp file is removed in order.
    _Worker.signalled = True


def _process_init(setup: Any, event: Any) -> None:
    """One thread per worker process (parallelism comes from processes, not from BLAS threads),
    and stop signals noted, not raised mid-write: the worker drops its shard at the next sample."""
    os.environ["OMP_NUM_THREADS"] = "1"
    _Worker.setup, _Worker.event = setup, event
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _note_signal)


@dataclass(frozen=True)
class WorkerPool:
    """Where a job's units run: `workers` threads, or spawned processes when `processes`.

    With one worker or one unit they run in this process, which needs no pool at all.
    """

    workers: int
    processes: bool = False
    setup: Any = None

    @contextmanager
    def started(self, units: int) -> Iterator[tuple[Executor | None, Any]]:
        """The executor (None to run in this process) and the event that stops its units."""
        size = min(self.workers, units)
        event: Any = threading.Event()
        executor: Executor | None = None
        if size > 1 and self.processes:
            spawn = get_context("spawn")
            event = spawn.Event()
            executor = ProcessPoolExecutor(
                max_workers=size,
                mp_context=spawn,
                initializer=_process_init,
                initargs=(self.setup, event),
            )
        elif size > 1:
            executor = ThreadPoolExecutor(max_workers=size)
        saved = _Worker.setup, _Worker.event
        _Worker.setup, _Worker.event = self.setup, event  # this process's own units read them
        try:
            yield executor, event
        finally:
            event.set()  # after an error, running units drop their shards too
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
            _Worker.setup, _Worker.event = saved


# ---------------------------------------------------------------------------------------------
# The job


@dataclass(frozen=True)
class ShardDone:
    """One shard the job recorded, for progress: kept from an earlier run or just written."""

    name: str
    entry: dict[str, Any]
    done: int
    total: int
    resumed: bool


OnShard = Callable[[ShardDone], None]


class ShardJob(Generic[Unit, Result]):
    """The shards `planned` for `directory`, and the manifest `manifest_name` recording them.

    `header` is the job's own part of the manifest (what made the corpus); `shards` maps each
    finished shard's name to its entry (samples, bytes, sha256 and anything the job adds).
    """

    def __init__(
        self,
        directory: Path,
        manifest_name: str,
        header: dict[str, Any],
        planned: Sequence[str],
        on_shard: OnShard | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / manifest_name
        self.manifest: dict[str, Any] = {**header, "shards": {}}
        self.planned = list(planned)
        self.on_shard = on_shard or (lambda done: None)

    def keep_finished(self, recorded: dict[str, dict[str, Any]]) -> list[str]:
        """Record the planned shards an earlier run finished whose files still match their
        entries, write the manifest, and return the names left to write, in plan order."""
        todo = []
        for name in self.planned:
            entry = recorded.get(name)
            if shard_is_complete(self.directory, name, entry):
                self.manifest["shards"][name] = entry
                self._report(name, resumed=True)
            else:
                todo.append(name)
        self.write_manifest()
        return todo

    def write_manifest(self) -> None:
        """Write the manifest as it stands (atomically: a temp name, then a rename)."""
        write_manifest(self.directory, self.manifest, self.path.name)

    def record(self, name: str, entry: dict[str, Any]) -> None:
        """Put a finished shard in the manifest; a stop signal waits until it is written."""
        with deferred():
            self.manifest["shards"][name] = entry
            self.write_manifest()
        self._report(name, resumed=False)

    def _report(self, name: str, resumed: bool) -> None:
        done = len(self.manifest["shards"])
        entry = self.manifest["shards"][name]
        self.on_shard(ShardDone(name, entry, done, len(self.planned), resumed))

    def stopped_line(self) -> str:
        """The one line an interrupted run ends with: what it kept and that it resumes."""
        return (
            f"{len(self.manifest['shards'])} of {len(self.planned)} shards are finished and "
            f"recorded in {self.path}; the same command resumes"
        )

    @contextmanager
    def stopping(self) -> Iterator[None]:
        """Within the block, Ctrl-C and SIGTERM end the run as `Interrupted(stopped_line())`."""
        try:
            with signals_interrupt():
                yield
        except Interrupted:
            raise
        except KeyboardInterrupt:
            raise Interrupted(self.stopped_line()) from None

    def run(
        self,
        units: Sequence[Unit],
        work: Callable[[Unit], Result],
        pool: WorkerPool,
        entry_of: Callable[[Unit, Result], tuple[str, dict[str, Any]]],
    ) -> list[Result]:
        """Run `work` on every unit on `pool`, recording each shard (`entry_of` names it and
        gives its manifest entry) as it finishes; the results in the order they finished.

        On a stop signal the units are told to drop their shards, queued units are cancelled,
        and units that finished meanwhile are still recorded before the run stops. For processes,
        `work` is a module-level function, and units must pickle.
        """
        results: list[Result] = []

        def finish(unit: Unit, result: Result) -> None:
            self.record(*entry_of(unit, result))
            results.append(result)

        with self.stopping(), pool.started(len(units)) as (executor, event):
            if executor is None:
                for unit in units:
                    finish(unit, work(unit))
                return results
            futures = {executor.submit(work, unit): unit for unit in units}
            finished: set[Future[Result]] = set()
            try:
                for future in as_completed(futures):
                    finish(futures[future], future.result())
                    finished.add(future)
            except KeyboardInterrupt:
                with deferred():  # a second Ctrl-C must not cut the clean-up short
                    event.set()
                    executor.shutdown(wait=True, cancel_futures=True)
                    for future, unit in futures.items():
                        done = future.done() and not future.cancelled()
                        if done and future not in finished and future.exception() is None:
                            finish(unit, future.result())
                raise
        return results
