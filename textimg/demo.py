"""`textimg demo`: train a model that writes, from nothing, in minutes on a laptop's CPU.

The learn-to-write chain (`textimg.learning.chain`) at the smallest size where it finishes inside
10 minutes on 2 CPU cores: task `LETTERS` renders 3-letter lowercase strings (`DIGITS`, with
`--task digits`, 2-3 digit strings), trains its recipe on them, samples prompts that were never
rendered for training and reads them back, beside chance and the clean-render ceiling. Here
lives what the demo adds: its tasks by name, torch on the cores other processes leave free, and
the table it prints. `benchmarks/learns_to_write.py` runs the larger
tasks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from textimg.eval import heldout
from textimg.learning.chain import ReportFactory, run_chain
from textimg.learning.task import DIGITS, LETTERS, Task

TASKS = {"letters": LETTERS, "digits": DIGITS}
"""The demo's tasks by the names `textimg demo --task` takes (`textimg.choices.DEMO_TASKS`)."""


def _busy_cores(seconds: float = 0.5) -> float | None:
    """Cores busy over the next `seconds` by /proc/stat (Linux), None where it cannot be read."""

    def ticks() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # all, idle + iowait

    try:
        total, idle = ticks()
        time.sleep(seconds)
        total2, idle2 = ticks()
    except (OSError, ValueError, IndexError):
        return None
    if total2 <= total:
        return None
    return (os.cpu_count() or 1) * (1 - (idle2 - idle) / (total2 - total))


def free_cores() -> int:
    """Torch threads for this run: the cores that other processes leave idle, at least one.

    On a busy machine every thread beyond the free cores waits at each of oneDNN's barriers for
    a core someone else holds: with the 1-minute load at 8 on 2 cores, two threads trained the
    demo's network at 6.6 images/s and one thread at 19.6. Busy cores are sampled for half a
    second, since the load average lags: just after another run ends it still counts that run.
    """
    cores = os.cpu_count() or 1
    busy = _busy_cores()
    if busy is None:
        busy = os.getloadavg()[0]
    return max(1, cores - round(busy))


def run_demo(
    out: Path,
    seed: int = 0,
    task: Task = LETTERS,
    log: Callable[[str], None] = print,
    report: ReportFactory | None = None,
) -> dict[str, Any]:
    """The task's chain under `out` with `seed`, torch on the free cores, then the score table;
    returns what it writes to `out/result.json`. `report` shows the training (a progress bar)."""
    result = run_chain(
        replace(task, seed=seed), Path(out), log=log, threads=free_cores(), report=report
    )
    log(heldout.score_table({"demo": result["scores"]}))
    return result
