"""OCR engine table: RapidOCR, EasyOCR and Tesseract read the same images in the same process.

Sets, each at 32/64/128/256 px, clean and degraded (Gaussian blur of side/128 px, then Gaussian
noise of sigma 12 gray levels):
- corpus: samples rendered by `textimg synth` (its fonts, 1-5 lines, flat gray backgrounds), the
  text a model learns to write;
- held-out: 1-2 lines of 1-2 English words in the Computer Modern faces matplotlib ships (cmr10,
  cmss10, cmtt10, cmb10), which textimg's font list does not use, dark on light or light on dark.
Per cell: mean `trigram`, `exact` share and seconds per image (engines warmed up, no cache). The
noise row is the share of pure-noise images (uniform random pixels) in which an engine reads text.

Then the speed check: the default engine against a plain per-image EasyOCR `reader.readtext`
loop, on the same held-out images, alternating, best of `--repeats` rounds (the target is >= 2x).

    python benchmarks/ocr.py --n 32           # engine table, ranking and speed check
    python benchmarks/ocr.py --speed-only --threads 1   # the speed check, torch on one thread
    python benchmarks/ocr.py --sweep --n 24   # enlargement and detector side, per engine

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from textimg.data.shards import image_member, iter_samples
from textimg.data.texts import english_vocabulary
from textimg.eval import metrics, ocr
from textimg.eval.scoring import open_image_for_ocr

SIZES = (32, 64, 128, 256)
HELD_OUT_FONTS = ("cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf")
NOISE_SIGMA = 12.0
Reader = Callable[[Sequence[Image.Image]], list[str]]


def held_out_font_paths() -> list[str]:
    root = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    return [os.path.join(root, name) for name in HELD_OUT_FONTS]


def held_out_prompts(count: int, seed: int) -> list[str]:
    """1-2 lines of 1-2 words, lower, Title or UPPER case; letters only, which every face draws."""
    rng = random.Random(seed)
    words = [w for w in english_vocabulary()[0] if w.isalpha() and len(w) > 1]
    texts = []
    for _ in range(count):
        lines = []
        for _ in range(rng.randint(1, 2)):
            style = rng.randrange(3)
            line = [rng.choice(words) for _ in range(rng.randint(1, 2))]
            line = [w.title() if style == 1 else w.upper() if style == 2 else w for w in line]
            lines.append(" ".join(line))
        texts.append("\n".join(lines))
    return texts


def render(text: str, font_path: str, size: int, ink: int, paper: int) -> Image.Image:
    """`text` as large as fits in `size` px with a 6% margin, gray `ink` on gray `paper`."""
    margin = max(2, round(size * 0.06))
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    for font_size in range(size * 3 // 4, 4, -1):
        font = ImageFont.truetype(font_path, font_size)
        box = measure.multiline_textbbox((0, 0), text, font=font, spacing=font_size // 4)
        if box[2] - box[0] <= size - 2 * margin and box[3] - box[1] <= size - 2 * margin:
            break
    image = Image.new("L", (size, size), paper)
    origin = (margin - box[0], margin - box[1])
    ImageDraw.Draw(image).multiline_text(origin, text, font=font, fill=ink, spacing=font_size // 4)
    return image.convert("RGB")


def held_out_set(count: int, size: int, seed: int = 1) -> tuple[list[str], list[Image.Image]]:
    """Held-out prompts, each in the next held-out face, alternately dark-on-light and inverse."""
    rng = random.Random(seed)
    texts, fonts = held_out_prompts(count, seed), held_out_font_paths()
    images = []
    for index, text in enumerate(texts):
        dark, light = rng.randint(0, 60), rng.randint(190, 255)
        ink, paper = (dark, light) if index % 2 == 0 else (light, dark)
        images.append(render(text, fonts[index % len(fonts)], size, ink, paper))
    return texts, images


def corpus_set(count: int, size: int, workdir: Path) -> tuple[list[str], list[Image.Image]]:
    """`count` samples of `textimg synth --size size` and their texts."""
    out = workdir / f"synth-{size}"
    command = [sys.executable, "-m", "textimg", "synth", "--out", str(out), "--n", str(count),
               "--size", str(size), "--seed", "3", "--workers", "1"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    texts, images = [], []
    for _, members in iter_samples([out]):
        texts.append(members["txt"].decode("utf-8"))
        images.append(open_image_for_ocr(image_member(members)[1]))
    return texts, images


def degrade(images: Sequence[Image.Image], seed: int = 2) -> list[Image.Image]:
    """Gaussian blur of side/128 px, then gray Gaussian noise of sigma `NOISE_SIGMA`."""
    rng = np.random.default_rng(seed)
    degraded = []
    for image in images:
        blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(image.width / 128)), np.float32)
        noise = rng.normal(0.0, NOISE_SIGMA, blurred.shape[:2])[..., None]
        degraded.append(Image.fromarray(np.clip(blurred + noise, 0, 255).astype(np.uint8)))
    return degraded


def noise_images(count: int, size: int, seed: int = 4) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).convert("RGB")
        for _ in range(count)
    ]


def plain_easyocr_loop(engine: ocr.EasyOcrEngine) -> Reader:
    """The baseline: one `reader.readtext` call per image, its boxes joined into lines as ours."""

    def read(images: Sequence[Image.Image]) -> list[str]:
        transcripts = []
        for image in images:
            array, factor = engine._prepare(image)
            detections = [
                ocr.Detection(
                    text,
                    float(confidence),
                    tuple(v / factor for v in (box[0][0], box[0][1], box[2][0], box[2][1])),
                )
                for box, text, confidence in engine.reader.readtext(array)
            ]
            transcripts.append(engine._transcript(detections, image.size))
        return transcripts

    return read


def timed(read: Reader, images: Sequence[Image.Image]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    transcripts = read(images)
    return time.perf_counter() - start, transcripts


def scores(texts: Sequence[str], transcripts: Sequence[str]) -> tuple[float, float]:
    """(mean trigram, exact share)."""
    pairs = list(zip(texts, transcripts, strict=True))
    return (
        statistics.mean(metrics.trigram(t, r) for t, r in pairs),
        statistics.mean(metrics.exact(t, r) for t, r in pairs),
    )


def make(name: str, upscale: int = 0, detection_side: int | None = None) -> ocr.OcrEngine:
    """An uncached engine; `detection_side` overrides RapidOCR's (for the sweep)."""
    engine = ocr.make_engine(ocr.OcrSettings(engine=name, upscale=upscale))
    if detection_side is not None and detection_side != engine.detection_side:
        attributes = {"detection_side": detection_side}
        engine = type("RapidOcrVariant", (ocr.RapidOcrEngine,), attributes)(engine.settings)
    return engine


def describe_machine() -> str:
    import onnxruntime
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"onnxruntime {onnxruntime.__version__}, date {time.strftime('%Y-%m-%d')}"
    )


def engine_table(args: argparse.Namespace) -> None:
    names = [n for n in ocr.ENGINES if n in ocr.available_engines()]
    engines = {name: make(name) for name in names}
    warm = held_out_set(2, 64)[1]
    for engine in engines.values():
        engine.read(warm)
    print(f"machine: {describe_machine()}; {args.n} images per cell\n")
    print("| set | size | " + " | ".join(f"{n} trigram / exact / s/img" for n in names) + " |")
    print("|---|---:|" + "---|" * len(names))
    totals: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as workdir:
        for set_name in ("corpus", "held-out"):
            for size in SIZES:
                if set_name == "corpus":
                    texts, clean = corpus_set(args.n, size, Path(workdir))
                else:
                    texts, clean = held_out_set(args.n, size)
                for condition, images in (("clean", clean), ("degraded", degrade(clean))):
                    cells = []
                    for name, engine in engines.items():
                        seconds, transcripts = timed(engine.read, images)
                        trigram, exact = scores(texts, transcripts)
                        totals[name].append((trigram, exact))
                        cells.append(f"{trigram:.3f} / {exact:.2f} / {seconds / len(images):.2f}")
                    row = f"| {set_name} {condition} | {size} | " + " | ".join(cells) + " |"
                    print(row, flush=True)
    invented = {name: [] for name in names}
    for size in SIZES:
        images = noise_images(args.n, size)
        for name, engine in engines.items():
            invented[name].append(sum(bool(t) for t in engine.read(images)) / len(images))
    cells = [" / ".join(f"{v:.2f}" for v in invented[name]) for name in names]
    print("| noise: share read as text, 32/64/128/256 px | | " + " | ".join(cells) + " |\n")
    means = {
        name: (statistics.mean(e for _, e in cells), statistics.mean(t for t, _ in cells))
        for name, cells in totals.items()
    }
    print("ranking by mean exact, then trigram, over the 16 cells:")
    for name in sorted(names, key=lambda n: means[n], reverse=True):
        print(f"  {name}: exact {means[name][0]:.3f}, trigram {means[name][1]:.3f}")
    speed_check(args, engines[ocr.DEFAULT_ENGINE], engines["easyocr"])


def speed_check(args: argparse.Namespace, default: ocr.OcrEngine, easy: ocr.OcrEngine) -> None:
    """Images/s of a plain `readtext` loop, textimg's batched EasyOCR and the default engine."""
    readers = {"plain": plain_easyocr_loop(easy), "easyocr": easy.read, "default": default.read}
    print(f"\nspeed, clean held-out images, alternating rounds, best of {args.repeats}: plain")
    print(f"EasyOCR readtext loop, textimg's batched EasyOCR, default ({default.name})\n")
    print("| size | plain img/s | easyocr img/s | default img/s | default/plain | trigram p/e/d |")
    print("|---:|---:|---:|---:|---:|---|")
    for size in (64, 128, 256):
        texts, images = held_out_set(args.n, size, seed=5)
        best = dict.fromkeys(readers, float("inf"))
        outputs: dict[str, list[str]] = {}
        for read in readers.values():
            read(images[:1])  # first calls allocate buffers: not timed
        for _ in range(args.repeats):
            for name, read in readers.items():
                seconds, outputs[name] = timed(read, images)
                best[name] = min(best[name], seconds)
        rate = {name: len(images) / seconds for name, seconds in best.items()}
        trigrams = "/".join(f"{scores(texts, outputs[name])[0]:.3f}" for name in readers)
        print(f"| {size} | {rate['plain']:.2f} | {rate['easyocr']:.2f} | {rate['default']:.2f} | "
              f"{rate['default'] / rate['plain']:.2f}x | {trigrams} |", flush=True)  # fmt: skip


def sweep(args: argparse.Namespace) -> None:
    """Enlargement factor (and RapidOCR's detector side) on held-out 64 and 128 px renderings."""
    variants = [("rapidocr", 320), ("rapidocr", 736), ("easyocr", None)]
    print(f"machine: {describe_machine()}; {args.n} images per cell\n")
    print("| engine | size | upscale | clean trigram / exact | degraded trigram / exact | s/img |")
    print("|---|---:|---:|---|---|---:|")
    for size in (64, 128):
        texts, clean = held_out_set(args.n, size)
        degraded = degrade(clean)
        for name, side in variants:
            label = f"{name} det {side}" if side else name
            for factor in (1, 2, 3):
                engine = make(name, factor, side)
                engine.read(clean[:1])
                seconds, clean_read = timed(engine.read, clean)
                _, degraded_read = timed(engine.read, degraded)
                (ct, ce), (dt, de) = scores(texts, clean_read), scores(texts, degraded_read)
                cells = f"{ct:.3f} / {ce:.2f} | {dt:.3f} / {de:.2f} | {seconds / len(clean):.2f}"
                print(f"| {label} | {size} | {factor}x | {cells} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="images per cell")
    parser.add_argument("--repeats", type=int, default=2, help="speed check: timed rounds")
    parser.add_argument("--sweep", action="store_true", help="enlargement and detector side")
    parser.add_argument("--speed-only", action="store_true", help="only the speed check")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.sweep:
        sweep(args)
    elif args.speed_only:
        print(f"machine: {describe_machine()}; {args.n} images per size")
        speed_check(args, make(ocr.DEFAULT_ENGINE), make("easyocr"))
    else:
        engine_table(args)


if __name__ == "__main__":
    main()
