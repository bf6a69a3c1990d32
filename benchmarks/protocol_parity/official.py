"""What every parity script shares: loading the official code from a fetched git dir at a named
commit (nothing of it is copied into textimg), stubbing the heavy imports its metric functions
never call, and writing the fixture tests/fixtures/protocols/<name>.json."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "protocols"


def head_commit(gitdir: str) -> str:
    """The commit the official code is read at: the fetched snapshot's HEAD."""
    return subprocess.run(
        ["git", "-C", gitdir, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def official_source(gitdir: str, commit: str, path: str) -> str:
    """One official file's text at `commit`."""
    return subprocess.run(
        ["git", "-C", gitdir, "show", f"{commit}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def export(gitdir: str, commit: str, paths: list[str], into: Path) -> None:
    """Write official files under `into`, keeping their repository paths (for their imports)."""
    for path in paths:
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(official_source(gitdir, commit, path), encoding="utf-8")


def stub_modules(*names: str, **attributes: object) -> None:
    """Empty stand-ins for heavy imports; `attributes` as "module.attr" -> value via `set_attr`."""
    for name in names:
        module = types.ModuleType(name)
        module.__path__ = []  # importable as a package too
        sys.modules[name] = module
    for dotted, value in attributes.items():
        set_attr(dotted, value)


def set_attr(dotted: str, value: object) -> None:
    """Set attribute `a.b.c` (module a.b, attribute c) on a stub module."""
    module, _, attribute = dotted.rpartition(".")
    setattr(sys.modules[module], attribute, value)


def write_fixture(name: str, official_code: str, rows: list[dict], aggregate: dict) -> Path:
    """The fixture: each case with its official per-item metrics, and the official aggregate."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / f"{name}.json"
    payload = {
        "protocol": name,
        "official_code": official_code,
        "cases": rows,
        "aggregate": aggregate,
    }
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path
