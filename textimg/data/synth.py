"""The synthetic corpus: grayscale text in random fonts, sizes and line breaks on flat backgrounds.

Sample i is a pure function of (seed, i) and the font set: its random generator is seeded with
(seed, i) alone, so any shard can be rebuilt alone, on any machine with the same fonts, by any
number of workers. A shard is the unit of work of a `shard_job.ShardJob`: rendered whole by one
worker process, written under a temporary name, renamed, then recorded (size + sha256) in the
manifest. A rerun skips shards the manifest vouches for and rebuilds the rest; Ctrl-C or SIGTERM
records the shards already finished and says so in one line. `shard_range` lets a Slurm array or
a Kubernetes indexed Job split one corpus; each part writes `manifest-A-B.json`, which
`merge_manifests` folds into `manifest.json`.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from textimg.choices import PLACEMENTS
from textimg.data.drawable import RejectedText, drawable_characters, write_rejects
from textimg.data.fonts import FontInfo
from textimg.data.png import encode_gray_png
from textimg.data.render import Layout, fit_text, render_layout
from textimg.data.shard_job import (
    OnShard,
    ShardJob,
    WorkerPool,
    check_stop,
    claim_output,
    read_manifests,
    worker_setup,
)
from textimg.data.shard_job import check_output as check_shard_output
from textimg.data.shards import (
    MANIFEST_NAME,
    ShardInfo,
    shard_entry,
    shard_name,
    write_manifest,
    write_shard,
)
from textimg.data.texts import pick_text
from textimg.errors import TextimgError, check_choice

SHARD_PREFIX = "synth"
ALIGNMENTS = ("left", "center", "right")
MIN_IMAGE_SIZE = 16
MIN_FONT_PX = 6
"""Below 6 px a glyph is a smudge for OCR and for the model alike."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the corpus bytes: equal configs write equal shards."""

    n: int
    seed: int = 0
    size: int = 256
    shard_size: int = 1000
    max_lines: int = 5
    min_font_px: int | None = None
    max_font_px: int | None = None
    min_contrast: int = 96
    margin: float = 0.04
    max_spacing: float = 0.35
    placement: str = "random"  # random | center: where the text block sits in the image
    text_file: str | None = None
    text_sha256: str | None = None
    fonts: list[dict[str, str]] = field(default_factory=list)

    @property
    def font_range(self) -> tuple[int, int]:
        """Font sizes in px (the em size): 14% to 40% of the image side unless set.

        14% keeps an em of 9 px at 64 px and 18 px at 128 px, the training resolutions, where
        lowercase letters stay about 5 and 10 px tall: the smallest OCR still reads reliably.
        """
        low = self.min_font_px or max(MIN_FONT_PX, round(self.size * 0.14))
        high = self.max_font_px or max(low, round(self.size * 0.40))
        return low, high

    @property
    def num_shards(self) -> int:
        return -(-self.n // self.shard_size)

    def check(self) -> None:
        """Refuse options that cannot make a corpus, with a message that says which and why."""
        if self.seed < 0:
            raise TextimgError(f"--seed must be 0 or more, got {self.seed}")
        if self.n <= 0:
            raise TextimgError(f"--n must be positive, got {self.n}")
        if self.shard_size <= 0:
            raise TextimgError(f"--shard-size must be positive, got {self.shard_size}")
        if self.max_lines < 1:
            raise TextimgError(f"--max-lines must be at least 1, got {self.max_lines}")
        check_choice("--placement", self.placement, PLACEMENTS)
        if not 1 <= self.min_contrast <= 255:
            raise TextimgError(f"--min-contrast must be in 1..255, got {self.min_contrast}")
        low, high = self.font_range
        usable = self.size * (1 - 2 * self.margin)
        fits = MIN_FONT_PX <= low <= usable
        if self.min_font_px is not None and self.size >= MIN_IMAGE_SIZE and not fits:
            raise TextimgError(
                f"--min-font-px {low} does not fit --size {self.size}: give "
                f"{MIN_FONT_PX}..{int(usable)} px (the text area inside the margins)"
            )
        if self.size < MIN_IMAGE_SIZE or not fits:
            raise TextimgError(
                f"--size {self.size} is too small for any font: text needs at least "
                f"{MIN_FONT_PX} px font sizes inside a {MIN_IMAGE_SIZE} px or larger image"
            )
        if high < low:
            raise TextimgError(f"--max-font-px {high} is below --min-font-px {low}")


@dataclass(frozen=True)
class RenderContext:
    """What every worker needs to render any sample: the config, the fonts, the text corpus."""

    config: SynthConfig
    fonts: tuple[FontInfo, ...]
    corpus: tuple[str, ...] | None

    def families(self) -> dict[str, list[FontInfo]]:
        """Faces by family, sorted, so a seeded pick never depends on font discovery order."""
        grouped: dict[str, list[FontInfo]] = {}
        for font in sorted(self.fonts, key=lambda f: (f.family, f.style, f.file)):
            grouped.setdefault(font.family, []).append(font)
        return grouped


def font_fingerprint(fonts: Sequence[FontInfo]) -> list[dict[str, str]]:
    """How the manifest names the font set: file, family, style and content hash, in use order."""
    return [
        {"file": f.file, "family": f.family, "style": f.style, "sha256": f.sha256} for f in fonts
    ]


@lru_cache(maxsize=8)
def _gray_choices(min_contrast: int) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Per usable background gray, the text grays at least `min_contrast` away from it."""
    pairs = []
    for background in range(256):
        texts = tuple(g for g in range(256) if abs(g - background) >= min_contrast)
        if texts:
            pairs.append((background, texts))
    return tuple(pairs)


def _contrasting_grays(rng: random.Random, min_contrast: int) -> tuple[int, int]:
    """A uniformly random usable background gray, and a uniformly random text gray that
    contrasts with it by at least `min_contrast`."""
    background, texts = rng.choice(_gray_choices(min_contrast))
    return background, rng.choice(texts)


def _paragraphs(text: str, charset: str) -> list[list[str]]:
    """Split a text into paragraphs of words, keeping only characters the font draws."""
    allowed = drawable_characters(charset)
    paragraphs = []
    for line in text.split("\n"):
        words = "".join(c for c in line if c in allowed).split()
        if words:
            paragraphs.append(words)
    return paragraphs


def sample_rng(seed: int, index: int) -> random.Random:
    """The generator of sample `index`: a pure function of (seed, index)."""
    return random.Random((seed << 40) | index)


def make_sample(
    index: int, context: RenderContext, families: dict[str, list[FontInfo]]
) -> tuple[Image.Image, str, dict[str, Any]]:
    """Draw every random choice of sample `index`, fit and render it: (image, text, metadata)."""
    config = context.config
    rng = sample_rng(config.seed, index)
    names = sorted(families)
    faces = families[names[rng.randrange(len(names))]]
    font = faces[rng.randrange(len(faces))]
    paragraphs: list[list[str]] = []
    while not paragraphs:  # a text of characters the font lacks (`drawable` ensures one exists)
        paragraphs = _paragraphs(pick_text(rng, context.corpus), font.charset)
    gaps = list(range(1, sum(len(p) for p in paragraphs)))
    breaks = set(rng.sample(gaps, min(rng.randrange(config.max_lines), len(gaps))))
    low, high = config.font_range
    font_size = rng.randint(low, high)
    spacing_ratio = rng.uniform(0.0, config.max_spacing)
    align = ALIGNMENTS[rng.randrange(len(ALIGNMENTS))]
    background, foreground = _contrasting_grays(rng, config.min_contrast)
    # Nothing after this draws from rng, so a centred corpus shares every other choice with the
    # random-placement corpus of the same seed.
    position = (rng.random(), rng.random()) if config.placement == "random" else (0.5, 0.5)

    margin = round(config.size * config.margin)
    area = config.size - 2 * margin
    while True:
        fitted = fit_text(
            paragraphs,
            breaks,
            font.path,
            font_size,
            spacing_ratio,
            align,
            area,
            low,
            config.max_lines,
        )
        x0, y0, x1, y1 = fitted.box
        dx = margin - x0 + int(position[0] * (area - (x1 - x0) + 1))
        dy = margin - y0 + int(position[1] * (area - (y1 - y0) + 1))
        layout = Layout(
            lines=tuple(" ".join(words) for words in fitted.lines),
            origins=tuple((x + dx, y + dy) for x, y in fitted.origins),
            font_path=font.path,
            font_size=fitted.font_size,
            background=background,
            foreground=foreground,
            image_size=config.size,
        )
        image, ink = render_layout(layout)
        inside = ink is not None and ink[0] > 0 and ink[1] > 0 and max(ink[2:]) < config.size
        if inside or fitted.font_size <= low:
            break
        font_size = max(low, int(fitted.font_size * 0.9))  # hinting pushed ink to an edge
    metadata = {
        "index": index,
        "seed": [config.seed, index],
        "font_file": font.file,
        "font_family": font.family,
        "font_style": font.style,
        "font_size": fitted.font_size,
        "lines": len(fitted.lines),
        "line_spacing": round(fitted.font_size * spacing_ratio),
        "align": align,
        "background": background,
        "foreground": foreground,
        "bbox": list(ink) if ink else None,
        "dropped": fitted.dropped,
    }
    return image, layout.text, metadata


def key_for_index(index: int) -> str:
    """Zero-padded global index: sorts in corpus order and holds no dots (webdataset splits keys at
    the first dot)."""
    return f"{index:09d}"


def render_sample(index: int, context: RenderContext, families: dict[str, list[FontInfo]]):
    """One sample as shard members: `png` (grayscale), `txt` (exactly what is drawn), `json`."""
    image, text, metadata = make_sample(index, context, families)
    members = {
        "png": encode_gray_png(image),
        "txt": text.encode("utf-8"),
        "json": json.dumps(metadata, sort_keys=True).encode("utf-8"),
    }
    return key_for_index(index), members, metadata


@dataclass(frozen=True)
class ShardResult:
    """What a worker reports for one rendered shard."""

    name: str
    info: ShardInfo
    families: dict[str, int]
    dropped: int


def render_shard(shard_index: int, context: RenderContext, directory: Path) -> ShardResult:
    """Render shard `shard_index` in full and write it atomically into `directory`.

    A stop request abandons the shard between two samples (`shard_job.check_stop`); in this
    process, Ctrl-C raises where it lands and the temp file is removed just the same.
    """
    config = context.config
    families = context.families()
    start = shard_index * config.shard_size
    stop = min(config.n, start + config.shard_size)
    used: Counter[str] = Counter()
    dropped = 0

    def samples():
        nonlocal dropped
        for index in range(start, stop):
            check_stop()
            key, members, metadata = render_sample(index, context, families)
            used[metadata["font_family"]] += 1
            dropped += metadata["dropped"] > 0
            yield key, members

    name = shard_name(SHARD_PREFIX, shard_index)
    info = write_shard(directory / name, samples())
    return ShardResult(name=name, info=info, families=dict(used), dropped=dropped)


def parse_shard_range(text: str | None, num_shards: int) -> tuple[int, int]:
    """`A:B` -> (A, B), shards A..B-1; either side may be empty (`:10`, `5:`)."""
    if not text:
        return 0, num_shards
    try:
        first, _, last = text.partition(":")
        start = int(first) if first else 0
        stop = int(last) if last else num_shards
    except ValueError:
        raise TextimgError(f"--shards must look like A:B (shards A..B-1), got {text!r}") from None
    if not 0 <= start < stop <= num_shards:
        raise TextimgError(f"--shards {text} is outside 0:{num_shards} for this corpus")
    return start, stop


def manifest_file_name(start: int, stop: int, num_shards: int) -> str:
    """`manifest.json` for a whole corpus, `manifest-000010-000020.json` for a part of one."""
    if (start, stop) == (0, num_shards):
        return MANIFEST_NAME
    return f"manifest-{start:06d}-{stop:06d}.json"


def recorded_config(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest's corpus options, with any option added since it was written at its default
    (which is what that older version rendered), so a corpus stays resumable across upgrades."""
    defaults = {f.name: f.default for f in fields(SynthConfig) if f.default is not MISSING}
    return {**defaults, **manifest.get("config", {})}


def _describe_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(keys) or "unknown"


def _another_corpus(directory: Path, config_dict: dict[str, Any], ignore: Sequence[str]):
    """Why a manifest in `directory` describes a corpus other than `config_dict`, or None."""
    wanted = {k: v for k, v in config_dict.items() if k not in ignore}

    def foreign(manifest: dict[str, Any]) -> str | None:
        options = {k: v for k, v in recorded_config(manifest).items() if k not in ignore}
        if manifest.get("kind") == "synth" and options == wanted:
            return None
        return (
            f"{directory} holds another corpus (its manifest differs in: "
            f"{_describe_difference(options, wanted)}); choose an empty folder or the same options"
        )

    return foreign


def check_output(directory: Path, config_dict: dict[str, Any], ignore: Sequence[str] = ()) -> None:
    """Refuse an output that is not a writable folder, whose manifests describe another corpus,
    or that holds tars no manifest describes. Options in `ignore` are not compared: the CLI checks
    the folder before it knows the font set, so a mistyped option fails before any font work."""
    check_shard_output(directory, _another_corpus(directory, config_dict, ignore), "*.tar")


@dataclass
class SynthReport:
    """The outcome of a run, for the summary table and for tests."""

    rendered: list[ShardResult]
    skipped: list[str]
    manifest_path: Path
    total_samples: int = 0
    total_bytes: int = 0


def _render_unit(shard_index: int) -> ShardResult:
    """`render_shard` with the (context, directory) the worker pool was set up with."""
    context, directory = worker_setup()
    return render_shard(shard_index, context, directory)


def _recorded_as(shard_index: int, result: ShardResult) -> tuple[str, dict[str, Any]]:
    """A rendered shard's manifest entry: size, sha256, and how many texts were cut to fit."""
    return result.name, {**shard_entry(result.info), "dropped": result.dropped}


def run_synth(
    context: RenderContext,
    directory: Path,
    workers: int,
    shard_range: tuple[int, int] | None = None,
    on_shard: OnShard | None = None,
    rejected: Sequence[RejectedText] = (),
) -> SynthReport:
    """Render the shards in `shard_range` (all by default) into `directory`, resuming if possible.

    `on_shard` is called as each shard is recorded (for progress bars). The manifest is
    rewritten after every shard, in the order shards finish. Ctrl-C or SIGTERM stops the run
    within a sample: every shard finished by then is recorded, no partial shard keeps a final
    name, and `Interrupted` says how many shards are done and that the same call resumes.
    The texts left out of the corpus (`rejected`) are listed beside the shards.
    """
    if not context.fonts:
        raise TextimgError("no usable fonts: run `textimg fonts --check` to see why")
    config = context.config
    config_dict = asdict(config)
    start, stop = shard_range or (0, config.num_shards)
    recorded = claim_output(directory, _another_corpus(directory, config_dict, ()), "*.tar")
    write_rejects(directory, rejected)
    indices = {shard_name(SHARD_PREFIX, index): index for index in range(start, stop)}
    header = {
        "kind": "synth",
        "config": config_dict,
        "num_shards": config.num_shards,
        "shard_range": [start, stop],
    }
    name = manifest_file_name(start, stop, config.num_shards)
    job: ShardJob[int, ShardResult] = ShardJob(directory, name, header, list(indices), on_shard)
    todo = job.keep_finished(recorded)
    skipped = [name for name in indices if name not in todo]
    pool = WorkerPool(workers, processes=True, setup=(context, directory))
    rendered = job.run([indices[name] for name in todo], _render_unit, pool, _recorded_as)
    entries = job.manifest["shards"].values()
    return SynthReport(
        rendered=rendered,
        skipped=skipped,
        manifest_path=job.path,
        total_samples=sum(e["samples"] for e in entries),
        total_bytes=sum(e["bytes"] for e in entries),
    )


def merge_manifests(directory: Path) -> tuple[dict[str, Any], list[str]]:
    """Fold the part manifests of a split run into `manifest.json`; return it and missing shards."""
    manifests = read_manifests(directory)
    if not manifests:
        raise TextimgError(f"no manifests to merge in {directory}")
    config = recorded_config(manifests[0])
    if any(recorded_config(m) != config or m.get("kind") != "synth" for m in manifests):
        raise TextimgError(f"the manifests in {directory} describe different corpora")
    merged = {
        **manifests[0],
        "config": config,
        "shard_range": [0, manifests[0]["num_shards"]],
        "shards": {},
    }
    for manifest in manifests:
        merged["shards"].update(manifest["shards"])
    expected = [shard_name(SHARD_PREFIX, i) for i in range(merged["num_shards"])]
    missing = [name for name in expected if name not in merged["shards"]]
    write_manifest(directory, merged)
    return merged, missing


def text_fingerprint(texts: Sequence[str]) -> str:
    """sha256 of the texts drawn from, so a changed text source is a different corpus."""
    return hashlib.sha256("\n\0".join(texts).encode("utf-8")).hexdigest()
