"""`textimg synth` as a user runs it, start-up included, against a bare Pillow loop drawing the same
texts in this process.

The textimg row times the real command (`python -m textimg synth ... --workers 1`) as a
subprocess: interpreter start, imports, the font catalog (from a warm font check cache, as on
every run after the first), the word list, rendering, PNG encoding, shard writing and the
manifest. The baseline is the least a Pillow script can do to write the same images: the (text,
font, size) of textimg's first N samples, each font loaded once when first needed,
`multiline_text` at a fixed place, Pillow's fastest PNG (level 1) into one tar; no fitting, no
glyph checks, no metadata. The two alternate `--repeats` times and the best of each is kept, which
filters out bursts of other load on a shared machine.

Run: `python benchmarks/synth.py --n 3000` (add `--trdg PATH` to time TRDG's `trdg` command from its
own venv: `python3 -m venv trdg-venv && trdg-venv/bin/pip install trdg "pillow<10"`).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from textimg.data.fonts import resolve_fonts
from textimg.data.shards import iter_samples
from textimg.data.synth import RenderContext, SynthConfig, font_fingerprint, make_sample

Job = tuple[str, str, int]
"""One image to draw: (text, font path, font size in px)."""


def naive_loop(jobs: list[Job], size: int, out: Path) -> None:
    """Draw the jobs the bare Pillow way: fonts loaded once each, `multiline_text` at a fixed
    place, a level-1 PNG into a tar."""
    fonts: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}
    with tarfile.open(out, "w") as tar:
        for i, (text, path, px) in enumerate(jobs):
            font = fonts.get((path, px))
            if font is None:
                font = fonts[path, px] = ImageFont.truetype(path, px)
            image = Image.new("L", (size, size), 200)
            ImageDraw.Draw(image).multiline_text((8, 8), text, font=font, fill=30)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=1)
            info = tarfile.TarInfo(f"{i:09d}.png")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)


def corpus_jobs(context: RenderContext, n: int) -> list[Job]:
    """(text, font path, font size) of textimg's first n samples, so both draw the same."""
    families = context.families()
    by_file = {font.file: font.path for font in context.fonts}
    jobs = []
    for index in range(n):
        _, text, meta = make_sample(index, context, families)
        jobs.append((text, by_file[meta["font_file"]], meta["font_size"]))
    return jobs


def synth_command(n: int, size: int, shard_size: int, workers: int, out: Path) -> list[str]:
    """The `textimg synth` command line the benchmark times (default fonts, seed 0)."""
    options = ["--n", n, "--size", size, "--shard-size", shard_size, "--workers", workers]
    return [sys.executable, "-m", "textimg", "synth", *map(str, options), "--out", str(out)]


def run_command(command: list[str]) -> None:
    """Run a command to completion, failing loudly (with its output) if it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the commands)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    function()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument(
        "--repeats", type=int, default=2, help="alternating runs of each; best kept"
    )
    parser.add_argument(
        "--trdg", default=None, help="the trdg command of a venv with trdg and pillow<10"
    )
    args = parser.parse_args()
    fonts = tuple(resolve_fonts().valid)  # what the command resolves; fills the font check cache
    config = SynthConfig(
        n=args.n, size=args.size, shard_size=args.shard_size, fonts=font_fingerprint(fonts)
    )
    jobs = corpus_jobs(RenderContext(config=config, fonts=fonts, corpus=None), args.n)
    load = os.getloadavg()[0]
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        warm = synth_command(1, args.size, args.shard_size, 1, root / "warm-up")
        run_command(warm)  # imports and font files into the OS cache, as on a second run
        cases: dict[str, Callable[[int], object]] = {
            "bare Pillow loop, same texts (in process)": lambda r: naive_loop(
                jobs, args.size, root / f"naive-{r}.tar"
            ),
            "textimg synth --workers 1 (whole command)": lambda r: run_command(
                synth_command(args.n, args.size, args.shard_size, 1, root / f"one-{r}")
            ),
        }
        for repeat in range(args.repeats):
            for name, case in cases.items():
                wall, cpu = timed(partial(case, repeat))
                old = best.get(name, (float("inf"), float("inf")))
                best[name] = (min(old[0], wall), min(old[1], cpu))
        drawn = [members["txt"].decode() for _, members in iter_samples([root / "one-0"])]
        if drawn != [text for text, _, _ in jobs]:
            raise SystemExit("the command drew other texts than the baseline: not comparable")
        size_bytes = sum(p.stat().st_size for p in (root / "one-0").glob("*.tar"))
    counts = dict.fromkeys(best, args.n)
    if args.trdg:
        count = max(200, args.n // 10)
        command = [args.trdg, "-c", str(count), "-w", "3", "-f", "64", "-t", "1", "--output_dir"]
        with tempfile.TemporaryDirectory() as folder:
            name = f"trdg -c {count} -w 3 -f 64 -t 1 (own venv)"
            best[name] = timed(partial(run_command, [*command, folder]))
            counts[name] = count

    baseline = next(iter(best))
    base_wall, base_cpu = (args.n / t for t in best[baseline])
    print(f"{args.n} images of {args.size} px, best of {args.repeats}; {os.cpu_count()} CPUs")
    print(f"load average at start / end: {load:.1f} / {os.getloadavg()[0]:.1f}")
    print("| pipeline | img/s wall | x bare (wall) | img per CPU-s | x bare (CPU) |")
    print("|---|---:|---:|---:|---:|")
    for name, (wall, cpu) in best.items():
        rate_wall, rate_cpu = counts[name] / wall, counts[name] / cpu
        print(
            f"| {name} | {rate_wall:.0f} | {rate_wall / base_wall:.2f} | {rate_cpu:.0f} | "
            f"{rate_cpu / base_cpu:.2f} |"
        )
    per_image = size_bytes / args.n
    print(f"bytes per image: {per_image:,.0f}; 407,000 images: {per_image * 407_000 / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
