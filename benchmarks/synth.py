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
import resource
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from textimg.data.fonts import resolve_fonts
from textimg.data.render import load_font, word_metrics
from textimg.data.synth import (
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


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function, *args) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result) of one call."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = function(*args)
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def textimg_run(context: RenderContext, out: Path, workers: int) -> int:
    """`textimg synth` of the context's corpus with `workers` processes; returns bytes written.

    The in-process caches are cleared first, so the 1-worker run starts as cold as a new worker.
    """
    load_font.cache_clear()
    word_metrics.cache_clear()
    return run_synth(context, out, workers).total_bytes


def trdg_run(trdg: str, n: int) -> bool:
    """Run TRDG (`trdg -c n -w 3 -f 64 -t 1`) from its own venv; False if it failed."""
    command = [trdg, "-c", str(n), "-w", "3", "-f", "64", "-t", "1", "--output_dir"]
    with tempfile.TemporaryDirectory() as folder:
        return subprocess.run([*command, folder], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument(
        "--trdg", default=None, help="the trdg command of a venv with trdg and pillow<10"
    )
    args = parser.parse_args()
    fonts = resolve_fonts().valid
    context = make_context(args.n, fonts, args.size, args.shard_size)
    jobs = corpus_jobs(make_context(args.n, fonts, args.size, args.shard_size), args.n)
    rows: list[tuple[str, int, float, float]] = []  # name, images, wall s, cpu s
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        wall, cpu, _ = timed(naive_loop, jobs, args.size, root / "n1.tar", 1)
        rows.append(("naive Pillow loop (PNG level 1)", args.n, wall, cpu))
        wall, cpu, _ = timed(naive_loop, jobs, args.size, root / "n6.tar", 6)
        rows.append(("naive Pillow loop (PNG level 6, Pillow default)", args.n, wall, cpu))
        wall, cpu, size_bytes = timed(textimg_run, context, root / "w1", 1)
        rows.append(("textimg synth, 1 worker", args.n, wall, cpu))
        wall, cpu, _ = timed(textimg_run, context, root / "w2", 2)
        rows.append(("textimg synth, 2 workers", args.n, wall, cpu))
    if args.trdg:
        count = max(200, args.n // 10)
        wall, cpu, ok = timed(trdg_run, args.trdg, count)
        if ok:
            rows.append(("trdg -c N -w 3 -f 64 -t 1 (own venv)", count, wall, cpu))
    naive_rate = rows[0][1] / rows[0][3]
    print(f"load average at start/end: {os.getloadavg()[0]:.1f} (2-core machine)")
    print(f"{'pipeline':50s} {'img/s wall':>10s} {'img/CPU-s':>10s} {'x naive':>8s}")
    for name, count, wall, cpu in rows:
        rate = count / cpu
        print(f"{name:50s} {count / wall:10.0f} {rate:10.0f} {rate / naive_rate:8.2f}")
    one, two = rows[2], rows[3]
    print(f"wall-clock scaling 1 -> 2 workers: {one[2] / two[2]:.2f}x")
    print(f"CPU efficiency of 2 workers vs 1: {one[3] / two[3]:.2f} (1.00 = no overhead)")
    print(f"fixed cost per extra worker (start-up, cold caches): {two[3] - one[3]:.1f} CPU-s")
    per_image = size_bytes / args.n
    print(f"bytes per image: {per_image:,.0f}; 407,000 images: {per_image * 407_000 / 1e9:.2f} GB")
    per_core = args.n / one[3]
    print(
        "407,000 images on 2 idle cores (per-core rate x 2, plus the start-up): "
        f"{(407_000 / (2 * per_core) + (two[3] - one[3])) / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
