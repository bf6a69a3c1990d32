"""Images/s per core of `textimg synth` against a naive Pillow loop, measured in the same process.

The naive loop is the practical ceiling of a Pillow renderer: fonts loaded once, the text drawn at
a fixed place with `multiline_text`, a PNG saved into a tar; no fitting, no checks, no metadata.
Run: `python benchmarks/synth.py --n 3000` (add `--trdg PATH` to time TRDG's `trdg` command from its
own venv: `python3 -m venv trdg-venv && trdg-venv/bin/pip install trdg "pillow<10"`).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from textimg.fonts import resolve_fonts
from textimg.synth import (
    PNG_COMPRESS_LEVEL,
    RenderContext,
    SynthConfig,
    font_fingerprint,
    make_sample,
    run_synth,
)


def naive_loop(jobs, size: int, out: Path, compress_level: int) -> float:
    """Seconds to render the same (text, font, size) jobs the naive way: every font preloaded,
    `multiline_text` at a fixed place, a PNG into a tar; no fitting, no checks, no metadata."""
    fonts = {(path, px): ImageFont.truetype(path, px) for _, path, px in jobs}
    start = time.perf_counter()
    with tarfile.open(out, "w") as tar:
        for i, (text, path, px) in enumerate(jobs):
            image = Image.new("L", (size, size), 200)
            ImageDraw.Draw(image).multiline_text((8, 8), text, font=fonts[path, px], fill=30)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=compress_level)
            info = tarfile.TarInfo(f"{i:09d}.png")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    return time.perf_counter() - start


def corpus_jobs(context: RenderContext, n: int) -> list[tuple[str, str, int]]:
    """(text, font path, font size) of textimg's first n samples, so both loops draw the same."""
    families = context.families()
    by_file = {font.file: font.path for font in context.fonts}
    jobs = []
    for index in range(n):
        _, text, meta = make_sample(index, context, families)
        jobs.append((text, by_file[meta["font_file"]], meta["font_size"]))
    return jobs


def make_context(n: int, fonts, size: int, shard_size: int) -> RenderContext:
    config = SynthConfig(n=n, size=size, shard_size=shard_size, fonts=font_fingerprint(fonts))
    return RenderContext(config=config, fonts=tuple(fonts), corpus=None)


def textimg_run(context: RenderContext, out: Path, workers: int) -> tuple[float, int]:
    """Seconds and bytes for `textimg synth` of the context's corpus with `workers` processes."""
    start = time.perf_counter()
    report = run_synth(context, out, workers)
    return time.perf_counter() - start, report.total_bytes


def trdg_run(trdg: str, n: int) -> float | None:
    """Seconds for TRDG (`trdg -c n -w 3 -f 64 -t 1`) in its own venv, or None if unavailable."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = subprocess.run(
            [
                trdg,
                "-c",
                str(n),
                "-w",
                "3",
                "-f",
                "64",
                "-t",
                "1",
                "--output_dir",
                folder,
            ],
            capture_output=True,
        )
        return time.perf_counter() - start if result.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument(
        "--trdg", default=None, help="the trdg command of a venv with trdg and pillow<10"
    )
    args = parser.parse_args()
    fonts = resolve_fonts().valid
    context = make_context(args.n, fonts, args.size, args.shard_size)
    jobs = corpus_jobs(make_context(args.n, fonts, args.size, args.shard_size), args.n)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        naive = naive_loop(jobs, args.size, root / "naive.tar", PNG_COMPRESS_LEVEL)
        naive_default = naive_loop(jobs, args.size, root / "naive6.tar", 6)
        one, size_bytes = textimg_run(context, root / "w1", 1)
        two = None
        if (os.cpu_count() or 1) >= 2:
            two, _ = textimg_run(context, root / "w2", 2)
    rows.append(("naive Pillow loop (PNG level 1)", args.n / naive, 1.0))
    rows.append(
        ("naive Pillow loop (PNG default, level 6)", args.n / naive_default, naive / naive_default)
    )
    rows.append(("textimg synth, 1 worker", args.n / one, naive / one))
    if two:
        rows.append(("textimg synth, 2 workers (total)", args.n / two, naive / two))
    if args.trdg:
        count = max(200, args.n // 10)
        trdg = trdg_run(args.trdg, count)
        if trdg:
            rows.append(
                ("trdg -w 3 -f 64, 1 thread", count / trdg, (count / trdg) / (args.n / naive))
            )
    print(f"{'pipeline':44s} {'img/s':>9s} {'x naive':>8s}")
    for name, rate, ratio in rows:
        print(f"{name:44s} {rate:9.0f} {ratio:8.2f}")
    if two:
        print(f"scaling 1 -> 2 workers: {one / two:.2f}x")
    per_image = size_bytes / args.n
    print(f"bytes per image: {per_image:,.0f}; 407,000 images: {per_image * 407_000 / 1e9:.2f} GB")
    print(f"407,000 images at the 2-worker rate: {407_000 / (args.n / (two or one)) / 60:.1f} min")


if __name__ == "__main__":
    main()
