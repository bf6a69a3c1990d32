"""Shared plumbing of the parity scripts: load one file of a benchmark's official repository at a
commit (its heavy imports stubbed) and write the fixture textimg's tests compare against."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from cases import cases

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "protocols"


def head_commit(gitdir: str) -> str:
    """The commit the official repository's checkout is at."""
    return subprocess.check_output(["git", "-C", gitdir, "rev-parse", "HEAD"], text=True).strip()


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


def write_fixture(protocol: str, official_code: str, scored: list[dict], aggregate: dict) -> Path:
    """`tests/fixtures/protocols/<protocol>.json`: every case with the official per-item
    metrics, and the official aggregate over all of them."""
    rows = [
        {
            "key": case["key"],
            "target": {"text": case["text"], "regions": case["regions"]},
            "transcript": case["transcript"],
            "official": official,
        }
        for case, official in zip(cases(), scored, strict=True)
    ]
    FIXTURES.mkdir(parents=True, exist_ok=True)
    out = FIXTURES / f"{protocol}.json"
    document = {"protocol": protocol, "official_code": official_code, "cases": rows}
    document["aggregate"] = aggregate
    out.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return out
