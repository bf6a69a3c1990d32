"""Learning to write on a GPU: `base64` trained for minutes on a corpus rendered on its cores.

The lent GPU machine has no network, no EasyOCR weights and no wordfreq, and each lease is short,
so the run has three phases:

    python benchmarks/learns_to_write_gpu.py prepare --carry .gpu           # here
    python3 benchmarks/learns_to_write_gpu.py device --carry .gpu --out $OUT  # on the GPU machine
    python benchmarks/learns_to_write_gpu.py score --results DIR --out docs  # here, with EasyOCR

`prepare` writes the texts (task `lines` of `textimg.learning.task`: two lines of short mixed-case
words; 200 held-out prompts never rendered for training) and copies the four bold fonts into
`--carry`, a folder that travels with the working tree. `device` renders the corpus with `textimg
synth` on every core, trains `base64` in segments of `--minutes / --segments` of training time
(`train.max_minutes`, each segment `--resume`s the last), samples the held-out prompts from each
segment's EMA weights (guidance 3; no guidance too after the last) and writes the samples, the
training metrics and a JSON of steps, images seen and images/s to `--out`. `score` reads them back
with EasyOCR against their own prompts, shuffled prompts (chance) and clean renderings (ceiling),
and writes the table, the learning curve (`learns_to_write_gpu.json`) and a contact sheet.

`device --toy` runs the same phase at toy size on a CPU in a minute: the check before a lease.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the GPU machine runs from the checkout, nothing installed

from textimg.eval.heldout import read_score_entry, score_table, write_sample_sheet  # noqa: E402
from textimg.learning.chain import read_training_log  # noqa: E402
from textimg.learning.task import TWO_LINES, write_texts  # noqa: E402

TASK = dataclasses.replace(TWO_LINES, name="gpu", recipe="base64", train_images=150_000)
# A short run at a constant rate: the recipe's 1e-4 at batch 64 is the post's multi-day setting.
TRAIN_OVERRIDES = (
    "train.batch_size=128",
    "train.lr=3e-4",
    "train.warmup_steps=200",
    "train.steps=1000000",
    "train.checkpoint_every=1000000",
    "train.sample_every=0",
    "train.log_every=10",
    "data.num_workers=8",
)
# The toy run: a 32 px micro model, so the device phase's plumbing is checked on a CPU in a minute.
TOY_OVERRIDES = (
    "model.image_size=32",
    "model.model_channels=16",
    "model.channel_mult=[1,2]",
    "model.attention_resolutions=[]",
    "model.text_resolutions=[16]",
    "model.text_dim=64",
    "model.text_depth=1",
    "model.context_length=32",
    "model.cross_attention_head_channels=32",
    "model.norm_groups=8",
    "train.batch_size=8",
    "data.num_workers=1",
    'train.device="cpu"',
)


def prepare(carry: Path) -> None:
    """Texts, prompt files and font files for the device phase, under `carry`."""
    from textimg.data.fonts import resolve_fonts

    # the device names each sample KEY.png, so the shuffled prompts are keyed by KEY alone
    texts = write_texts(TASK, carry, sample_suffix="")
    fonts = carry / "fonts"
    fonts.mkdir(exist_ok=True)
    for font in resolve_fonts(texts.fonts_file, system=True).valid:
        shutil.copy2(font.path, fonts / Path(font.path).name)
    print(f"prepared {carry}: {len(texts.train)} training texts, "
          f"{len(texts.prompts)} held-out prompts, {len(list(fonts.iterdir()))} fonts")  # fmt: skip


def _render_options(carry: Path, workers: int) -> list[str]:
    """`textimg synth` options that draw the task's images (corpus and clean renderings alike)
    from the fonts in `carry` alone: the GPU machine has none of the pip font packages."""
    options = [
        "--size", TASK.image_size(), "--max-lines", TASK.max_lines,
        "--min-font-px", TASK.min_font_px, "--max-font-px", TASK.max_font_px,
        "--min-contrast", TASK.min_contrast, "--placement", TASK.placement,
        "--fonts", carry / "fonts.txt", "--workers", max(1, workers),
        "--font-dir", carry / "fonts", "--no-system-fonts",
    ]  # fmt: skip
    return [str(option) for option in options]


def device(carry: Path, out: Path, minutes: float, segments: int, images: int, toy: bool) -> None:
    """Synth, segmented training and sampling; every number and sample lands in `out`."""
    import torch

    from textimg.checkpoint import load_checkpoint
    from textimg.config import apply_overrides, load_recipe
    from textimg.images import save_image
    from textimg.sampling import sample as draw
    from textimg.train import train

    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TEXTIMG_GPU_WORK", "/tmp/textimg-gpu"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    report: dict = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                    "torch": torch.__version__, "cpus": os.cpu_count(), "segments": []}  # fmt: skip
    heldout = [json.loads(line) for line in (carry / "prompts.jsonl").read_text().splitlines()]
    heldout = heldout[:8] if toy else heldout
    keys, prompts = [row["key"] for row in heldout], [row["text"] for row in heldout]

    def save_report() -> None:
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")

    started = time.perf_counter()
    corpus = work / "corpus"
    command = [sys.executable, "-m", "textimg", "synth", "--out", str(corpus), "--n", str(images),
               "--seed", "0", "--text-file", str(carry / "train.txt"), "--shard-size", "2000",
               *_render_options(carry, os.cpu_count() or 1)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    synth = subprocess.run(command, env=env, capture_output=True, text=True)
    report["synth"] = {
        "images": images,
        "seconds": round(time.perf_counter() - started, 1),
        "returncode": synth.returncode,
        "tail": synth.stdout[-1500:] + synth.stderr[-1500:],
    }
    save_report()
    if synth.returncode:
        raise SystemExit(f"synth failed:\n{synth.stderr[-3000:]}")

    config = load_recipe(TASK.recipe)
    overrides = [
        *TRAIN_OVERRIDES,
        *(TOY_OVERRIDES if toy else ()),
        f'data.shards=["{corpus}"]',
        f"train.max_minutes={minutes / segments}",
    ]
    config = apply_overrides(config, overrides)
    report["overrides"] = overrides
    device_name = "cuda" if torch.cuda.is_available() and not toy else "cpu"
    autocast = torch.autocast(device_name, dtype=torch.bfloat16, enabled=device_name == "cuda")
    run = work / "run"
    samples = work / "samples"
    for segment in range(1, segments + 1):
        began = time.perf_counter()
        train(config, run, resume=segment > 1)
        train_seconds = time.perf_counter() - began
        training = read_training_log(run)
        assert training is not None  # train() logs before it returns
        step = training.steps
        model, diffusion, _ = load_checkpoint(run / "checkpoint.pt", device=device_name)
        entry = {
            "segment": segment,
            "step": step,
            "images_seen": step * config.train.batch_size,
            "train_seconds": round(train_seconds, 1),
            "loss": training.loss,
            "images_per_s_median": round(training.images_per_s, 1),
        }
        for guidance in (3.0, 1.0) if segment == segments else (3.0,):
            began = time.perf_counter()
            with autocast:
                images = draw(model, diffusion, prompts, TASK.sample_steps, guidance, seed=0)
            folder = samples / f"step-{step:06d}-g{guidance:g}"
            folder.mkdir(parents=True)
            for key, image in zip(keys, images, strict=True):
                save_image(image, folder / f"{key}.png")
            entry[f"sample_seconds_g{guidance:g}"] = round(time.perf_counter() - began, 1)
        report["segments"].append(entry)
        report["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(entry), flush=True)
        del model
        # After every segment, so a lease that ends early still returns the curve so far.
        with tarfile.open(out / "samples.tar.tmp", "w") as tar:
            tar.add(samples, arcname="samples")
        os.replace(out / "samples.tar.tmp", out / "samples.tar")
        for name in ("metrics.jsonl", "config.json", "loss.png"):
            if (run / name).exists():
                shutil.copy2(run / name, out / name)
        save_report()


def score(results: Path, carry: Path, out: Path, sheet: Path) -> None:
    """OCR the device's samples: own prompts, shuffled prompts (chance), clean renderings."""
    from textimg.cli import app

    def textimg(*args: object) -> None:
        app([str(a) for a in args], prog_name="textimg", standalone_mode=False)

    report = json.loads((results / "report.json").read_text())
    work = out / "gpu-score"
    with tarfile.open(results / "samples.tar") as tar:
        tar.extractall(work, filter="data")
    upscale = ["--upscale", TASK.upscale]
    scores: dict[str, dict] = {}
    clean = work / "clean"
    if not (clean / "summary.json").exists():
        textimg("synth", "--out", clean / "shards", "--n", TASK.heldout, "--seed", TASK.seed + 1000,
                "--text-file", carry / "heldout.txt", *_render_options(carry, 2))  # fmt: skip
        textimg("score", clean / "shards", "--out", clean, *upscale)
    scores["clean renderings (ceiling)"] = read_score_entry(clean / "summary.json")
    curve = []
    folders = sorted((work / "samples").iterdir())
    for folder in folders:
        step, guidance = folder.name.split("-")[1], folder.name.split("-g")[1]
        textimg("score", folder, "--prompts", carry / "prompts.jsonl", "--out", folder, *upscale)
        shuffled = work / "shuffled" / folder.name
        textimg("score", folder, "--prompts", carry / "shuffled.jsonl", "--out", shuffled, *upscale)
        own = read_score_entry(folder / "summary.json")
        chance = read_score_entry(shuffled / "summary.json")
        curve.append({"step": int(step), "guidance": float(guidance), "own": own, "chance": chance})
        label = f"step {int(step)}, {'no guidance' if guidance == '1' else f'guidance {guidance}'}"
        scores[f"own prompts, {label}"] = own
        scores[f"shuffled, {label} (chance)"] = chance
    last = max((f for f in folders if f.name.endswith("-g3")), key=lambda f: f.name)
    write_sample_sheet(last, sheet)
    table = score_table({TASK.name: scores})
    print(table)
    summary = {"device_report": report, "curve": curve, "ceiling": scores[
        "clean renderings (ceiling)"], "table": table, "sheet": str(sheet)}  # fmt: skip
    (out / "learns_to_write_gpu.json").write_text(json.dumps(summary, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="phase", required=True)
    p = sub.add_parser("prepare", help="texts and fonts for the device phase (here)")
    p.add_argument("--carry", type=Path, default=REPO / ".gpu")
    d = sub.add_parser("device", help="synth, train, sample (on the GPU machine)")
    d.add_argument("--carry", type=Path, default=REPO / ".gpu")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--minutes", type=float, default=6.5, help="training time in all")
    d.add_argument("--segments", type=int, default=4, help="curve points (sampled after each)")
    d.add_argument("--images", type=int, default=TASK.train_images, help="corpus size")
    d.add_argument("--toy", action="store_true", help="CPU check at toy size")
    s = sub.add_parser("score", help="EasyOCR scores, table, curve and sheet (here)")
    s.add_argument("--carry", type=Path, default=REPO / ".gpu")
    s.add_argument("--results", type=Path, required=True, help="the device phase's --out")
    s.add_argument("--out", type=Path, default=REPO / "docs")
    s.add_argument("--sheet", type=Path, default=REPO / "docs" / "learns_to_write_gpu.png")
    args = parser.parse_args()
    if args.phase == "prepare":
        prepare(args.carry)
    elif args.phase == "device":
        device(args.carry, args.out, args.minutes, args.segments, args.images, args.toy)
    else:
        score(args.results, args.carry, args.out, args.sheet)


if __name__ == "__main__":
    main()
