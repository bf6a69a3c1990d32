"""The warm-start experiment: the same super-resolution run from scratch and warm-started.

Reads the two runs' `metrics.jsonl` and OCR summaries (`textimg eval --rerank --sr` or
`textimg score` folders), prints a table with the warm start's ratio against the from-scratch
baseline, and draws the loss curves side by side (`--plot`). `--upsample` first writes what a
super-resolution checkpoint makes of held-out shards degraded as in training (`KEY.png` and
`prompts.jsonl`, for `textimg score`), so its OCR score isolates the upsampler from the base
model; `--reference` writes the original images and the bilinear upsampling instead. The runs
themselves are `textimg` commands; docs/training.md lists them.

    python benchmarks/warm_start.py --upsample out/sr-warm/checkpoint.pt --data held --out up-warm
    python benchmarks/warm_start.py --runs out/sr-scratch out/sr-warm \
        --evals up-scratch/score up-warm/score --plot docs/warm_start.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def losses(run: Path) -> tuple[list[int], list[float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return [r["step"] for r in rows], [r["loss"] for r in rows]


def window_mean(values: list[float], start: int, end: int, steps: list[int]) -> float:
    """Mean loss over logged steps in (start, end]: single logged losses are noisy."""
    chosen = [v for s, v in zip(steps, values, strict=True) if start < s <= end]
    return sum(chosen) / len(chosen)


def upsample_heldout(
    checkpoint: Path | None, data: Path, out: Path, steps: int, low_res_size: int
) -> None:
    """Degrade held-out shards to `low_res_size` and upsample them; without a checkpoint, write
    the originals (`out/original`) and the bilinear upsampling (`out/bilinear`)."""
    import torch
    from PIL import Image

    from textimg.checkpoint import load_checkpoint
    from textimg.data.reader import decode_image
    from textimg.data.shards import image_member, iter_samples
    from textimg.images import to_uint8
    from textimg.sampling import sample
    from textimg.super_resolution import downsample

    model = None
    if checkpoint is not None:
        model, diffusion, config = load_checkpoint(checkpoint)
        size, channels = config.model.image_size, config.model.image_channels
        low_res_size, mode = (
            config.super_resolution.low_res_size,
            config.super_resolution.downsample,
        )
    else:
        size, channels, mode = 2 * low_res_size, 1, "area"
    keys, texts, images = [], [], []
    for key, members in iter_samples([data]):
        keys.append(key)
        texts.append(members["txt"].decode())
        images.append(decode_image(image_member(members)[1], size, channels))
    high = torch.stack(images)
    low = downsample(high, low_res_size, mode)
    if model is not None:
        folders = {"": sample(model, diffusion, texts, steps, 1.0, 0, low_res=to_uint8(low))}
    else:
        bilinear = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear")
        folders = {"original": to_uint8(high), "bilinear": to_uint8(bilinear)}
    for name, arrays in folders.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for key, array in zip(keys, arrays, strict=True):
            Image.fromarray(array[..., 0] if channels == 1 else array).save(folder / f"{key}.png")
        lines = (json.dumps({"key": k, "text": t}) + "\n" for k, t in zip(keys, texts, strict=True))
        (folder / "prompts.jsonl").write_text("".join(lines))
        print(f"wrote {len(keys)} images to {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upsample", type=Path, help="A super-resolution checkpoint.")
    parser.add_argument("--reference", type=int, metavar="LOW_RES_SIZE")
    parser.add_argument("--data", type=Path, help="Held-out shards for --upsample/--reference.")
    parser.add_argument("--out", type=Path, help="Output folder of --upsample/--reference.")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--runs", nargs=2, type=Path, metavar=("SCRATCH", "WARM"))
    parser.add_argument("--evals", nargs=2, type=Path, metavar=("SCRATCH", "WARM"))
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    if args.upsample or args.reference:
        upsample_heldout(args.upsample, args.data, args.out, args.steps, args.reference or 0)
        return
    if not args.runs:
        parser.error("give --runs SCRATCH WARM, or --upsample / --reference")
    names = ("from scratch", "warm start")
    curves = [losses(run) for run in args.runs]
    last = min(steps[-1] for steps, _ in curves)
    windows = [(0, 50), (50, 100), (last - 100, last - 50), (last - 50, last)]
    header = " | ".join(f"loss {a + 1}-{b}" for a, b in windows)
    metrics = ("trigram", "cer", "exact")
    extra = " | " + " | ".join(f"OCR {m}" for m in metrics) if args.evals else ""
    print(f"| run | {header}{extra} |")
    print("|---" * (1 + len(windows) + (len(metrics) if args.evals else 0)) + "|")
    values = []
    for index, (name, (steps, loss)) in enumerate(zip(names, curves, strict=True)):
        row = [window_mean(loss, a, b, steps) for a, b in windows]
        if args.evals:
            summary = json.loads((args.evals[index] / "summary.json").read_text())
            scores = summary.get("rerank", summary)  # an eval's rerank block, or a score summary
            row += [scores[m]["mean"] for m in metrics]
        values.append(row)
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    ratios = [w / s if s else float("nan") for s, w in zip(*values, strict=True)]
    print("| warm / scratch | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 3.5))
        for name, (steps, loss) in zip(names, curves, strict=True):
            axis.plot(steps, loss, linewidth=0.9, label=name)
        axis.set(xlabel="step", ylabel="training loss", yscale="log",
                 title="tiny-sr 32->64 px: from scratch vs warm start")  # fmt: skip
        axis.legend()
        figure.tight_layout()
        figure.savefig(args.plot, dpi=80)
        plt.close(figure)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
