"""OCR throughput: textimg's batched EasyOCR against a plain per-image `reader.readtext` loop.

Both paths read the same clean renderings (same enlargement) in the same process, alternating, and
each keeps its best of `--repeats` timings, so load from other processes hurts both alike. Also
reports how often the two transcripts agree and their mean trigram score against the truth.

    python benchmarks/ocr.py --images 48 --size 128
    python benchmarks/ocr.py --sweep-upscale --images 40   # which enlargement reads best

Prints a table and the batched/plain ratio (target: >= 2x on CPU).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from textimg.eval import metrics, ocr

WORDS = [
    *("open", "daily", "coffee", "shop", "the", "cat", "sat", "on", "mat", "hello", "world"),
    *("sale", "today", "only", "free", "wifi", "exit", "north", "road", "closed", "keep"),
    *("calm", "and", "carry", "books", "music", "night", "24", "hours", "9-5", "New", "York"),
]


def font_paths() -> list[str]:
    """DejaVu sans/serif/mono from matplotlib, plus Caladea when its package is installed."""
    root = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    paths = [
        os.path.join(root, f) for f in ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
    ]
    try:
        import font_caladea

        paths.append(font_caladea.font_files["Caladea"])
    except ImportError:
        pass
    return paths


def clean_rendering(text: str, font_path: str, size: int) -> Image.Image:
    """Black text on white, as large as fits in `size` px with a 6% margin."""
    margin = max(2, round(size * 0.06))
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    for font_size in range(size // 3, 4, -1):
        font = ImageFont.truetype(font_path, font_size)
        box = draw.multiline_textbbox((0, 0), text, font=font, spacing=font_size // 4)
        if box[2] - box[0] <= size - 2 * margin and box[3] - box[1] <= size - 2 * margin:
            break
    image = Image.new("RGB", (size, size), "white")
    origin = (margin - box[0], margin - box[1])
    ImageDraw.Draw(image).multiline_text(
        origin, text, font=font, fill="black", spacing=font_size // 4
    )
    return image


def corpus(count: int, size: int, seed: int = 0) -> tuple[list[str], list[Image.Image]]:
    """`count` texts of 1-3 lines of 1-3 words, each drawn in one of the fonts in turn."""
    rng = random.Random(seed)
    fonts = font_paths()
    texts = [
        "\n".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
            for _ in range(rng.randint(1, 3))
        )
        for _ in range(count)
    ]
    images = [clean_rendering(t, fonts[i % len(fonts)], size) for i, t in enumerate(texts)]
    return texts, images


def plain_loop(engine: ocr.EasyOcrEngine, images: list[Image.Image]) -> list[str]:
    """The baseline: one `reader.readtext` call per image, its boxes joined into lines as ours."""
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


def best_time(run, repeats: int) -> tuple[float, list[str]]:
    best, output = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        output = run()
        best = min(best, time.perf_counter() - start)
    return best, output


def mean_trigram(texts: list[str], transcripts: list[str]) -> float:
    return statistics.mean(metrics.trigram(t, r) for t, r in zip(texts, transcripts, strict=True))


def throughput(args: argparse.Namespace) -> None:
    import torch

    texts, images = corpus(args.images, args.size)
    engine = ocr.make_engine(ocr.OcrSettings(upscale=args.upscale))
    engine.read(images[:4])  # load and warm up both paths before timing
    plain_loop(engine, images[:2])
    timings: dict[str, float] = {"plain": float("inf"), "batched": float("inf")}
    outputs: dict[str, list[str]] = {}
    for _ in range(args.repeats):  # alternate so background load hits both paths alike
        for name, run in (
            ("plain", lambda: plain_loop(engine, images)),
            ("batched", lambda: engine.read(images)),
        ):
            seconds, outputs[name] = best_time(run, 1)
            timings[name] = min(timings[name], seconds)
    agree = sum(a == b for a, b in zip(outputs["plain"], outputs["batched"], strict=True))
    factor = engine.settings.upscale_for((args.size, args.size))
    precision = engine.describe()["settings"]["precision"]
    print(
        f"device {engine.reader.device}, torch threads {torch.get_num_threads()}, "  # fmt: skip
        f"{args.images} images of {args.size} px, upscale {factor}x, detector {precision}"
    )
    print(f"{'path':<10}{'images/s':>10}{'trigram':>10}")
    for name in ("plain", "batched"):
        rate = args.images / timings[name]
        print(f"{name:<10}{rate:>10.2f}{mean_trigram(texts, outputs[name]):>10.3f}")
    print(f"ratio batched/plain: {timings['plain'] / timings['batched']:.2f}x; "
          f"identical transcripts {agree}/{args.images}")  # fmt: skip


def sweep_upscale(args: argparse.Namespace) -> None:
    """Mean trigram and cost per enlargement factor on 64 and 128 px renders."""
    print(f"{'size':>5}{'upscale':>9}{'trigram':>9}{'exact':>7}{'s/img':>8}")
    for size in (64, 128):
        texts, images = corpus(args.images, size, seed=1)
        for factor in (1, 2, 3, 4):
            engine = ocr.make_engine(ocr.OcrSettings(upscale=factor))
            seconds, transcripts = best_time(lambda e=engine, i=images: e.read(i), 1)
            exact = statistics.mean(
                metrics.exact(t, r) for t, r in zip(texts, transcripts, strict=True)
            )
            print(f"{size:>5}{factor:>8}x{mean_trigram(texts, transcripts):>9.3f}{exact:>7.2f}"
                  f"{seconds / len(images):>8.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="clean renderings to read")
    parser.add_argument("--size", type=int, default=128, help="image side in px")
    parser.add_argument("--upscale", type=int, default=0, help="0 = the engine's automatic choice")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the best counts")
    parser.add_argument("--sweep-upscale", action="store_true", help="measure factors 1-4 instead")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads for both paths (0 = torch default)"
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    np.random.seed(0)
    sweep_upscale(args) if args.sweep_upscale else throughput(args)


if __name__ == "__main__":
    main()
