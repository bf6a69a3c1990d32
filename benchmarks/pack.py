"""Benchmark `textimg pack` against a bare read + decode loop over the same files, same run.

`pack` fully decodes every image to verify it, and that decode is nearly all of its work; the
bare loop does only that (read the bytes, decode every frame with Pillow) in one process, so its
rate is what one core can verify at all. Everything else pack does (reading the table, hashing,
planning, writing and fsyncing shards, the manifest, starting worker processes) should vanish
beside it. Targets: 1 worker >= 0.8x the bare loop, start-up included; 2 workers >= 1.7x
1 worker. The same two compared as whole processes (`python -c` of the loop against the
`textimg pack` command) add interpreter and import start-up to both. A plain `tar -cf` of the
same files is timed too, as the disk's copy rate. Each method runs `--rounds` times,
alternating; the best round counts.

    .venv/bin/python benchmarks/pack.py --images 400 --workers 1 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageSequence

from textimg.data.pack import PackOptions, pack


def make_corpus(folder: Path, count: int, seed: int = 0) -> tuple[Path, int]:
    """Half photo-like JPEGs (noise over gradients, 800x600), half text-on-flat PNGs (640x480),
    each with a transcript row; returns the JSONL table and the total image bytes."""
    rng = np.random.default_rng(seed)
    rows, total = [], 0
    for index in range(count):
        text = f"sale {index}\nonly today"
        if index % 2:
            width, height, name = 640, 480, f"png/{index:05d}.png"
            image = Image.new(
                "RGB", (width, height), tuple(int(v) for v in rng.integers(0, 255, 3))
            )
        else:
            width, height, name = 800, 600, f"jpg/{index:05d}.jpg"
            ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
            noise = rng.normal(0, 18, (height, width, 3)).astype(np.float32)
            image = Image.fromarray(np.clip(ramp + noise + 30, 0, 255).astype(np.uint8))
        ImageDraw.Draw(image).multiline_text((40, 40), text, fill=(255, 255, 255), font_size=48)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90) if name.endswith(".jpg") else image.save(path)
        total += path.stat().st_size
        rows.append({"image": name, "text": text})
    table = folder.parent / "transcripts.jsonl"
    table.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return table, total


def bare_decode(folder: Path) -> float:
    """Seconds to read and fully decode every image under `folder` in this process."""
    started = time.perf_counter()
    for path in sorted(folder.rglob("*.*")):
        with Image.open(path) as image:
            for frame in ImageSequence.Iterator(image):
                frame.load()
    return time.perf_counter() - started


BARE_PROCESS = """
import sys
from pathlib import Path
from PIL import Image, ImageSequence
for path in sorted(Path(sys.argv[1]).rglob("*.*")):
    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            frame.load()
"""


def timed_process(command: list[str]) -> float:
    """Seconds of a whole process, start-up included."""
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def pack_command(root: Path, table: Path) -> list[str]:
    """The `textimg pack` command line for the corpus, 1 worker, into a fresh folder."""
    out = root / "packed-cli"
    shutil.rmtree(out, ignore_errors=True)
    return [sys.executable, "-m", "textimg", "pack", str(root / "images"), "--out", str(out)] + [
        "--transcripts",
        str(table),
        "--shard-size",
        "100",
        "--workers",
        "1",
    ]


def plain_tar(root: Path) -> float:
    """Seconds for `tar -cf` of the images plus an fsync (pack fsyncs every shard)."""
    started = time.perf_counter()
    subprocess.run(
        ["tar", "-cf", str(root / "plain.tar"), "-C", str(root / "images"), "."], check=True
    )
    with open(root / "plain.tar", "rb+") as handle:
        os.fsync(handle.fileno())
    return time.perf_counter() - started


def timed_pack(root: Path, table: Path, workers: int, images: int) -> float:
    """Seconds of one whole `pack` call (worker start-up included) into a fresh folder."""
    out = root / f"packed-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    options = PackOptions(test_fraction=0.05, shard_size=100)
    started = time.perf_counter()
    result = pack(root / "images", out, table, options, workers=workers)
    seconds = time.perf_counter() - started
    assert result.packed == images and not result.rejected
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="images to generate")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="pack workers")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; best counts")
    arguments = parser.parse_args()

    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="textimg-bench-pack-") as temp:
        root = Path(temp)
        table, total = make_corpus(root / "images", arguments.images)
        methods = {"bare read + decode": lambda: bare_decode(root / "images")}
        for workers in arguments.workers:
            methods[f"textimg pack, {workers} worker{'s' if workers > 1 else ''}"] = (
                lambda workers=workers: timed_pack(root, table, workers, arguments.images)
            )
        methods["bare loop, own process"] = lambda: timed_process(
            [sys.executable, "-c", BARE_PROCESS, str(root / "images")]
        )
        methods["`textimg pack`, 1 worker, own process"] = lambda: timed_process(
            pack_command(root, table)
        )
        methods["tar -cf + fsync"] = lambda: plain_tar(root)
        for _ in range(arguments.rounds):
            for name, run in methods.items():
                best[name] = min(best.get(name, float("inf")), run())

    megabytes = total / 1e6
    print(f"{arguments.images} images ({megabytes:.1f} MB, half JPEG 800x600, half PNG 640x480)")
    print(f"best of {arguments.rounds} rounds on {os.cpu_count()} CPUs")
    print("| method | seconds | MB/s | images/s | x bare loop | x 1 worker |")
    print("|---|---|---|---|---|---|")
    one = next((v for k, v in best.items() if k.endswith(", 1 worker")), None)
    for name, seconds in best.items():
        # Processes against the bare loop's process, the rest against the in-process loop.
        bare = best["bare loop, own process" if "process" in name else "bare read + decode"]
        versus_one = f"{one / seconds:.2f}" if one and name.startswith("textimg") else "-"
        print(
            f"| {name} | {seconds:.2f} | {megabytes / seconds:.1f} "
            f"| {arguments.images / seconds:.0f} | {bare / seconds:.2f} | {versus_one} |"
        )


if __name__ == "__main__":
    main()
