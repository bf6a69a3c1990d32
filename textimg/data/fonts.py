"""Finding fonts on this machine and proving each one can write real text.

The synthetic corpus promises "never a missing glyph", so a font is only used for the characters it
demonstrably draws: its cmap maps them, and rendering them gives ink that is neither blank nor the
font's own missing-glyph box. Symbol, icon and "last resort" fonts are rejected because their
letters are blank, boxes, or all alike. Fonts come from the system's folders (and `fc-list`), from
folders the user names, and from pip packages that ship fonts, so a bare machine still gets a
varied set.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from textimg.files import user_cache_dir, write_text_atomic

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
"""The characters textimg writes: printable ASCII (the tokenizer's alphabet, less `\\n`)."""
REQUIRED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
"""A font must draw all of these to be usable: they make up almost every transcript."""
PROBE_SIZE = 32
MISSING_PROBE = "\U000f0000"
"""A supplementary private-use code point no text font maps: renders as the font's .notdef box."""

SYSTEM_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.fonts",
    "~/.local/share/fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "~/Library/Fonts",
    "C:/Windows/Fonts",
)
EMBEDDED_FONT_PACKAGES = (
    "rendercv_fonts",
    "font_amatic_sc",
    "font_caladea",
    "font_fjallaone",
    "font_fredoka_one",
    "font_intuitive",
)
"""Pip packages (dependencies of textimg) that ship OFL font files, checked to be real fonts."""

DEFAULT_FONT_LIST = Path(__file__).with_name("fonts.txt")
FONT_CACHE_NAME = "fonts.json"
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
REFERENCE_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Italic.ttf",
)
"""Matplotlib's DejaVu faces: the known-good letter shapes other fonts' letters are compared to."""
MIN_LETTER_IDENTITY = 0.4
"""Share of letters whose nearest reference shape is the same letter (any case). Real text fonts
score 0.54 (EB Garamond Italic) to 1.0; math/symbol fonts that map ASCII to other shapes score
0.06 (cmex10) to 0.33 (cmsy10); see docs/fonts.md."""


@dataclass(frozen=True)
class FontInfo:
    """A validated font: where it is, what it is called, its licence and the characters it draws."""

    path: str
    family: str
    style: str
    license: str
    license_url: str
    charset: str
    sha256: str

    @property
    def file(self) -> str:
        """The file name, the stable way to name a font across machines (read once per sample,
        so `os.path` rather than a `Path` object)."""
        return os.path.basename(self.path)


@dataclass(frozen=True)
class Rejection:
    """A font file that cannot be used, and why."""

    path: str
    reason: str


def embedded_font_dirs() -> list[Path]:
    """Folders of fonts shipped by pip dependencies: matplotlib's DejaVu and the font packages."""
    dirs: list[Path] = []
    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.origin:
        dirs.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf")
    for package in EMBEDDED_FONT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec and spec.origin:
            dirs.append(Path(spec.origin).parent)
    return [d for d in dirs if d.is_dir()]


def fontconfig_files() -> list[Path]:
    """Font files fontconfig knows about, where `fc-list` exists (it sees user-configured dirs)."""
    if shutil.which("fc-list") is None:
        return []
    try:
        listing = subprocess.run(
            ["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [Path(line) for line in listing.splitlines() if line.lower().endswith(FONT_SUFFIXES)]


def discover_font_files(extra_dirs: Iterable[Path] = (), system: bool = True) -> list[Path]:
    """Every font file in the system folders, `fc-list`, `extra_dirs` and the embedded packages.

    Files are deduplicated by resolved path and sorted by file name, so the order (and hence which
    font a seeded sample picks) does not depend on where a machine keeps its fonts.
    """
    roots = [Path(d).expanduser() for d in extra_dirs] + embedded_font_dirs()
    if system:
        roots += [Path(d).expanduser() for d in SYSTEM_FONT_DIRS]
    found: dict[Path, Path] = {}
    candidates: list[Path] = fontconfig_files() if system else []
    for root in roots:
        if root.is_dir():
            candidates += [p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES]
    for path in candidates:
        if path.is_file():
            found.setdefault(path.resolve(), path)
    return sorted(found.values(), key=lambda p: (p.name, str(p)))


def _name(font, name_id: int) -> str:
    record = font["name"].getDebugName(name_id) if "name" in font else None
    return record or ""


def _glyph_bitmap(font: ImageFont.FreeTypeFont, char: str) -> bytes:
    """The inked pixels of one character, cropped to their box: equal bitmaps mean equal glyphs."""
    canvas = Image.new("L", (PROBE_SIZE * 3, PROBE_SIZE * 3), 0)
    ImageDraw.Draw(canvas).text((PROBE_SIZE, PROBE_SIZE), char, font=font, fill=255)
    box = canvas.getbbox()
    if box is None:
        return b""
    cropped = canvas.crop(box)
    return bytes(f"{cropped.size}", "ascii") + cropped.tobytes()


def _letter_shapes(font: ImageFont.FreeTypeFont) -> np.ndarray:
    """Each letter's ink resized to 16x16, centred and unit-normalised: one row per letter."""
    rows = []
    for char in LETTERS:
        canvas = Image.new("L", (PROBE_SIZE * 3, PROBE_SIZE * 3), 0)
        ImageDraw.Draw(canvas).text((PROBE_SIZE, PROBE_SIZE), char, font=font, fill=255)
        box = canvas.getbbox()
        row = np.zeros(256, dtype=np.float32)
        if box is not None:
            row = np.asarray(canvas.crop(box).resize((16, 16), Image.BILINEAR), np.float32).ravel()
            row -= row.mean()
            row /= np.linalg.norm(row) or 1.0
        rows.append(row)
    return np.stack(rows)


@lru_cache(maxsize=1)
def _reference_shapes() -> np.ndarray:
    from matplotlib import get_data_path

    folder = Path(get_data_path()) / "fonts" / "ttf"
    faces = [ImageFont.truetype(str(folder / name), PROBE_SIZE) for name in REFERENCE_FONTS]
    return np.concatenate([_letter_shapes(face) for face in faces])


def letter_identity(font: ImageFont.FreeTypeFont) -> float:
    """How many of the font's letters look like that letter in a reference font (0..1).

    A nearest-neighbour read of each glyph against DejaVu's letters: text fonts, even script or
    display ones, mostly match; icon and math fonts that put other shapes on ASCII codes do not.
    """
    similarity = _letter_shapes(font) @ _reference_shapes().T
    predicted = similarity.argmax(axis=1) % 26
    return float((predicted == np.arange(len(LETTERS)) % 26).mean())


def drawable_characters(font: ImageFont.FreeTypeFont, cmap: dict[int, str]) -> str:
    """The printable characters that the font maps and draws as real, non-box glyphs.

    A character counts only when its cmap entry exists, its glyph has ink (space excepted), and the
    ink differs from the font's missing-glyph box (some fonts map characters to a .notdef copy).
    """
    missing_box = _glyph_bitmap(font, MISSING_PROBE)
    drawable = []
    for char in PRINTABLE:
        if ord(char) not in cmap:
            continue
        if char == " ":
            drawable.append(char)
            continue
        bitmap = _glyph_bitmap(font, char)
        if bitmap and bitmap != missing_box:
            drawable.append(char)
    return "".join(drawable)


def validate_font(path: Path) -> FontInfo | Rejection:
    """Check that `path` is a usable text font; return its `FontInfo` or the reason it is not.

    Checks, in order: fontTools parses it; Pillow loads it; its cmap covers letters and digits;
    those glyphs are drawn (not blank, not the missing-glyph box); and its letters are distinct
    glyphs, which rejects icon, symbol and "last resort" fonts that map letters to one shape.
    It renders ~170 glyphs, ~40 ms a font: `FontCheckCache` keeps the outcome between runs.
    """
    from fontTools.ttLib import TTFont, TTLibError

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        return Rejection(str(path), f"unreadable: {error.strerror or error}")
    try:
        parsed = TTFont(path, fontNumber=0, lazy=True)
        cmap = parsed.getBestCmap() or {}
        family = _name(parsed, 16) or _name(parsed, 1)
        style = _name(parsed, 17) or _name(parsed, 2)
        license_text, license_url = _name(parsed, 13), _name(parsed, 14)
    except (TTLibError, OSError, KeyError, ValueError, AssertionError) as error:
        return Rejection(str(path), f"not a font fontTools can parse ({error.__class__.__name__})")
    try:
        font = ImageFont.truetype(str(path), PROBE_SIZE)
    except OSError as error:
        return Rejection(str(path), f"Pillow cannot load it ({error})")
    lacking = [c for c in REQUIRED if ord(c) not in cmap]
    if lacking:
        return Rejection(str(path), f"cmap lacks {len(lacking)} of the letters/digits")
    charset = drawable_characters(font, cmap)
    undrawn = [c for c in REQUIRED if c not in charset]
    if undrawn:
        return Rejection(str(path), f"{len(undrawn)} letters/digits draw blank or as a missing box")
    letters = [_glyph_bitmap(font, c) for c in "abcdeghmnoprsABCDEGHMNOPRS"]
    if len(set(letters)) < len(letters) * 0.8:
        return Rejection(str(path), "symbol/icon font: its letters are not distinct glyphs")
    identity = letter_identity(font)
    if identity < MIN_LETTER_IDENTITY:
        return Rejection(
            str(path), f"symbol font: only {identity:.0%} of its letters look like letters"
        )
    return FontInfo(
        path=str(path),
        family=family or path.stem,
        style=style or "Regular",
        license=license_text.strip().splitlines()[0] if license_text.strip() else "",
        license_url=license_url,
        charset=charset,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def font_cache_path() -> Path:
    """The font check cache: `fonts.json` in textimg's cache folder (`TEXTIMG_CACHE_DIR`)."""
    return user_cache_dir() / FONT_CACHE_NAME


@lru_cache(maxsize=1)
def _checker_version() -> str:
    """textimg's version and a digest of this module: a cache written by other checks is stale,
    even in an editable checkout whose version number has not moved."""
    from textimg import __version__

    return f"{__version__}+{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]}"


class FontCheckCache:
    """`validate_font` outcomes kept on disk per font file, so a run checks only new or changed
    fonts (all ~130 of a desktop machine take 5-15 s; reading the cache takes milliseconds).

    An entry is keyed by the file's resolved path and holds the file's size and mtime; the whole
    file also names the checker version. Any mismatch means "validate again". The cache only
    ever saves time: a missing, unreadable or corrupt file (or entry) is ignored and rebuilt, and
    a cache that cannot be written is skipped.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else font_cache_path()
        self.entries = self._load()
        self.changed = False

    def _load(self) -> dict[str, Any]:
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent, unreadable or not JSON: start empty
            return {}
        if not isinstance(stored, dict) or stored.get("checker") != _checker_version():
            return {}
        fonts = stored.get("fonts")
        return fonts if isinstance(fonts, dict) else {}

    def validate(self, path: Path) -> FontInfo | Rejection:
        """`validate_font(path)`, answered from the cache while the file is unchanged."""
        path = Path(path)
        try:
            stat = path.stat()
            key = str(path.resolve())
        except OSError as error:
            return Rejection(str(path), f"unreadable: {error.strerror or error}")
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = self.entries.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            cached = _from_entry(entry, path)
            if cached is not None:
                return cached
        result = validate_font(path)
        self.entries[key] = {"stamp": stamp, **_to_entry(result)}
        self.changed = True
        return result

    def save(self) -> None:
        """Write the cache atomically if anything was validated, dropping fonts now gone."""
        if not self.changed:
            return
        fonts = {key: entry for key, entry in self.entries.items() if os.path.exists(key)}
        text = json.dumps({"checker": _checker_version(), "fonts": fonts}, sort_keys=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, text)
        except OSError:  # a read-only home or a cache folder taken by a file: run uncached
            return
        self.changed = False


def _to_entry(result: FontInfo | Rejection) -> dict[str, Any]:
    """A check outcome as cached: everything but the path, which is the key."""
    if isinstance(result, Rejection):
        return {"rejected": result.reason}
    fields = asdict(result)
    del fields["path"]
    return {"font": fields}


def _from_entry(entry: dict[str, Any], path: Path) -> FontInfo | Rejection | None:
    """The cached outcome for `path`, or None when the entry is not one `_to_entry` wrote."""
    if isinstance(entry.get("rejected"), str):
        return Rejection(str(path), entry["rejected"])
    fields = entry.get("font")
    if not isinstance(fields, dict):
        return None
    try:
        font = FontInfo(path=str(path), **fields)
    except TypeError:  # missing, unknown or repeated fields
        return None
    return font if all(isinstance(value, str) for value in asdict(font).values()) else None


def read_font_list(path: Path) -> list[str]:
    """Entries of a font list file: one a line, `#` starts a comment, blank lines ignored."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append(entry)
    return entries


def entry_matches(entry: str, font: FontInfo) -> bool:
    """A list entry names a font by file name, file glob, path, or family name (any case)."""
    path = Path(font.path)
    lowered = entry.lower()
    if lowered == font.family.lower():
        return True
    if "/" in entry or os.sep in entry:
        return Path(entry).expanduser().resolve() == path.resolve()
    return fnmatch.fnmatch(path.name.lower(), lowered)


@dataclass(frozen=True)
class FontCatalog:
    """The outcome of resolving a font list against this machine."""

    valid: list[FontInfo]
    rejected: list[Rejection]
    missing: list[str]
    found: dict[str, int]
    """Per list entry: how many valid fonts it matched."""


def resolve_fonts(
    font_list: Path | None = DEFAULT_FONT_LIST,
    extra_dirs: Iterable[Path] = (),
    system: bool = True,
    cache: FontCheckCache | None = None,
) -> FontCatalog:
    """Validate every font on the machine and keep those the list names (all of them if no list).

    Fonts in `extra_dirs` are always kept when valid: naming a folder means "use these". Checks
    are answered from `cache` (the user's font check cache unless given) where the file is
    unchanged; the outcome is the same either way.
    """
    if cache is None:
        cache = FontCheckCache()
    extra = [Path(d).expanduser().resolve() for d in extra_dirs]
    entries = read_font_list(font_list) if font_list else []
    valid: list[FontInfo] = []
    rejected: list[Rejection] = []
    found = dict.fromkeys(entries, 0)
    seen_faces: set[tuple[str, str]] = set()
    paths = discover_font_files(extra, system=system)
    # Fonts from named folders first, so a face there wins over the same face found elsewhere.
    paths.sort(key=lambda p: not any(p.resolve().is_relative_to(d) for d in extra))
    for path in paths:
        result = cache.validate(path)
        if isinstance(result, Rejection):
            rejected.append(result)  # every unusable file is reported, listed or not
            continue
        face = (result.family.lower(), result.style.lower())
        if face in seen_faces:  # the same face in two folders (or versions): keep the first
            continue
        seen_faces.add(face)
        in_extra = any(path.resolve().is_relative_to(d) for d in extra)
        matched = [e for e in entries if entry_matches(e, result)]
        for entry in matched:
            found[entry] += 1
        if matched or in_extra or not entries:
            valid.append(result)
    cache.save()
    missing = [e for e, count in found.items() if count == 0]
    return FontCatalog(valid=valid, rejected=rejected, missing=missing, found=found)
