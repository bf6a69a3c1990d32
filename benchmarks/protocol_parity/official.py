"""What every parity script shares: loading the official code from a fetched git dir at a named
commit (nothing of it is copied into textimg), stubbing the heavy imports its metric functions
never call, and writing the fixture tests/fixtures/protocols/<name>.json."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from cases import text_cases

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


def stub(name: str) -> None:
    """An empty module `name` whose every attribute exists: for imports (OCR engines, image
    libraries) that the scoring functions never call."""
    module = types.ModuleType(name)
    module.__getattr__ = lambda attribute: object  # any `from name import X` succeeds
    sys.modules.setdefault(name, module)


def load(gitdir: str, path: str, name: str, stubs: tuple[str, ...] = ()) -> types.ModuleType:
    """Import `path` as it is at HEAD of `gitdir` under module `name`, with `stubs` (modules the
    scoring functions never call, such as OCR engines) replaced by empty modules."""
    for name_of_stub in stubs:
        stub(name_of_stub)
    source = subprocess.check_output(["git", "-C", gitdir, "show", f"HEAD:{path}"])
    folder = Path(tempfile.mkdtemp(prefix="parity-"))
    file = folder / f"{name}.py"
    file.write_bytes(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_text_fixture(
    protocol: str, official_code: str, scored: list[dict], aggregate: dict
) -> Path:
    """The fixture of a `text_cases` script: each case with its official per-item metrics
    (`scored`, in case order) and the official aggregate."""
    rows = [
        {
            "key": case["key"],
            "target": {"text": case["text"], "regions": case["regions"]},
            "transcript": case["transcript"],
            "official": official,
        }
        for case, official in zip(text_cases(), scored, strict=True)
    ]
    return write_fixture(protocol, official_code, rows, aggregate)
