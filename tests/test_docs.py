"""The docs stay a product's docs: short pages, few images, no dead paths, no run diaries.

A newcomer reads README.md and docs/*.md; a page that grows into a notebook, cites a file that
was removed, or narrates how the work went (numbered work periods, tracker numbers) costs every
reader. These checks read files only, so they run in well under a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [REPO / "README.md"]
MAX_LINES = 400
MAX_IMAGES = 10
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}

# Top-level folders whose files a page may cite by repository path (`textimg/train.py`).
SOURCE_ROOTS = ("textimg", "tests", "benchmarks", "docs")
# Text that narrates the work instead of describing textimg: work periods, tracker numbers, other
# people's jobs, the order runs happened in, what changed since. The bracketed letters keep these
# lines from matching themselves. pytest's fixture scope is removed before matching: it names a
# fixture's lifetime, not a work period.
NARRATION = re.compile(
    r"s[e]ssion|iss[u]e [0-9#]|another job|other (?:people|eng[i]neers)|back[ -]to[ -]b[a]ck"
    r"|bef[o]re (?:one|two|three|four|five|several|[0-9]+) changes|which n[o]w",
    re.IGNORECASE,
)
# A page names a task by what it is ("two lines of words"), not by a number from the lab.
LAB_NAME = re.compile(r"\bt[a]sk[ -]?[0-9]+\b", re.IGNORECASE)
NARRATION_CASED = re.compile(r"\b[Cc]hain [A-Z]\b")
PYTEST_SCOPE = re.compile(r"""scope=["']s[e]ssion["']""")
SCANNED = ("textimg", "tests", "benchmarks", "docs")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".sh", ".json", ".cfg", ".yaml", ".yml"}

MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
REPO_PATH = re.compile(rf"(?<![\w./-])((?:{'|'.join(SOURCE_ROOTS)})/[\w./-]*\.\w+)")


def cited_paths(page: Path) -> list[tuple[str, Path]]:
    """Every repository path a page cites: relative markdown links (to the page's folder) and
    `root/.../name.ext` paths under a source folder, in code spans or code blocks (to the repo)."""
    text = page.read_text(encoding="utf-8")
    cited = []
    for target in MARKDOWN_LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        cited.append((target, page.parent / target.split("#")[0]))
    for match in REPO_PATH.finditer(text):
        path = match.group(1).split("::")[0].rstrip(".")
        if "*" in path or "<" in path:
            continue  # a pattern, not a file
        cited.append((path, REPO / path))
    return cited


def narrating_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) for every line of `text` that narrates the work."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        plain = PYTEST_SCOPE.sub("", line)
        if NARRATION.search(plain) or NARRATION_CASED.search(plain):
            found.append((number, line.strip()))
    return found


def lab_names(text: str) -> list[tuple[int, str]]:
    """(line number, line) for every line of a page that names a task by number."""
    lines = enumerate(text.splitlines(), 1)
    return [(number, line.strip()) for number, line in lines if LAB_NAME.search(line)]


def scanned_files() -> list[Path]:
    """The text files of the package, tests, benchmarks and docs, and the README."""
    files = [REPO / "README.md"]
    for root in SCANNED:
        files += [
            p
            for p in sorted((REPO / root).rglob("*"))
            if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts
        ]
    return [p for p in files if p.resolve() != Path(__file__).resolve()]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_is_longer_than_the_limit(page: Path) -> None:
    lines = len(page.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{page.name} has {lines} lines (at most {MAX_LINES})"


def test_docs_hold_few_images() -> None:
    images = [p for p in DOCS.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    assert len(images) <= MAX_IMAGES, sorted(p.name for p in images)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_cited_path_exists(page: Path) -> None:
    missing = [cited for cited, path in cited_paths(page) if not path.exists()]
    assert not missing, f"{page.name} cites paths that do not exist: {missing}"


def test_code_cites_only_docs_that_exist() -> None:
    """Docstrings and comments point readers at docs pages; a removed page must not linger."""
    cited = re.compile(r"docs/[\w.-]+\.(?:md|png|json)")
    missing = [
        f"{path.relative_to(REPO)}: {name}"
        for path in scanned_files()
        if path.suffix in {".py", ".toml", ".sh"}
        for name in cited.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not (REPO / name).exists()
    ]
    assert not missing, missing


def test_nothing_narrates_the_work() -> None:
    hits = [
        f"{path.relative_to(REPO)}:{number}: {line}"
        for path in scanned_files()
        for number, line in narrating_lines(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_name_tasks_by_what_they_are(page: Path) -> None:
    hits = lab_names(page.read_text(encoding="utf-8"))
    assert not hits, f"{page.name} names tasks by number: {hits}"


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The patterns themselves: a diary line and a dead path are found, plain text is not."""
    page = tmp_path / "page.md"
    page.write_text(
        "S"
        "ession 12 found it (is"
        "sue 7, chain K).\n"  # split: this file must not match
        "See [gone](gone.md) and `textimg/no_such_module.py`, `tests/test_docs.py::test_x`.\n"
        '@pytest.fixture(scope="ses'
        'sion") and the chain of commands.\n'
        "Seeds 1 and 2 ran back to b"
        "ack; 0.71x bef"
        "ore three changes.\n"
        "The command, which n"
        "ow scores with RapidOCR, on ta"
        "sk 2.\n"
        "A task with two lines of words; a pre-task check.\n",
        encoding="utf-8",
    )
    cited = dict(cited_paths(page))
    assert not cited["gone.md"].exists()
    assert not cited["textimg/no_such_module.py"].exists()
    assert cited["tests/test_docs.py"].exists()
    assert [number for number, _ in narrating_lines(page.read_text())] == [1, 4, 5]
    assert [number for number, _ in lab_names(page.read_text())] == [5]
