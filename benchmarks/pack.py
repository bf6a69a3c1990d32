"""Benchmark `textimg pack` against a plain `tar` of the same files, in the same run.

A plain tar only copies bytes, so its MB/s is the physical limit of this disk (and page cache);
`pack` also hashes and fully decodes every image. Target: at least 0.5x tar's MB/s.

    /work/venv/bin/python benchmarks/pack.py --images 400 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from textimg.data.pack import PackOptions, default_workers, pack


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="images to generate")
    parser.add_argument("--workers", type=int, default=default_workers(), help="pack workers")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="textimg-bench-pack-") as temp:
        root = Path(temp)
        table, total = make_corpus(root / "images", arguments.images)
        megabytes = total / 1e6

        started = time.perf_counter()
        subprocess.run(
            ["tar", "-cf", str(root / "plain.tar"), "-C", str(root / "images"), "."], check=True
        )
        with open(root / "plain.tar", "rb+") as handle:  # pack fsyncs every shard; so must tar
            os.fsync(handle.fileno())
        tar_seconds = time.perf_counter() - started

        options = PackOptions(test_fraction=0.05, shard_size=100)
        result = pack(root / "images", root / "packed", table, options, workers=arguments.workers)
        assert result.packed == arguments.images and not result.rejected

    print(f"{arguments.images} images ({megabytes:.1f} MB, half JPEG 800x600, half PNG 640x480)")
    print(f"{'method':<24}{'seconds':>9}{'MB/s':>9}{'images/s':>10}{'x tar':>8}")
    tar_rate = megabytes / tar_seconds
    for method, seconds in (
        ("tar -cf + fsync", tar_seconds),
        (f"textimg pack, {arguments.workers} workers", result.seconds),
    ):
        rate = megabytes / seconds
        print(
            f"{method:<24}{seconds:>9.2f}{rate:>9.1f}{arguments.images / seconds:>10.0f}"
            f"{rate / tar_rate:>8.2f}"
        )


if __name__ == "__main__":
    main()
