"""Training throughput of textimg's U-Net against a diffusers U-Net of matched size, same run.

For each recipe (default `base64` and `base`; `sr` and `tiny-sr` are the super-resolution stage,
which also reads a zero low-res image of the recipe's `low_res_size`), times full training steps
(forward, backward, AdamW) of textimg's model and of a `diffusers.UNet2DConditionModel` whose width
is chosen so its parameter count matches, at the same resolution, channels and text length (the
diffusers model gets random text states of the same length; it has no text encoder of its own, so
textimg's count includes its encoder). Each model runs in its own subprocess, so peak memory is its
own: peak RSS on CPU, `torch.cuda.max_memory_allocated` on GPU, where model FLOP utilisation (MFU)
is reported too. Target: at least the diffusers model's images/s per parameter.

    /work/venv/bin/python benchmarks/train.py --steps 2 --batch-size 2
    /work/venv/bin/python benchmarks/train.py --device cuda --batch-size 32 --steps 10

diffusers is only needed here (`pip install diffusers`); without it the baseline is skipped.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

TEXT_LENGTH = 64  # transcript tokens fed to both models
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16


def textimg_model(recipe: str) -> tuple[torch.nn.Module, object]:
    from textimg.config import load_recipe
    from textimg.model import build_model

    config = load_recipe(recipe)
    return build_model(config), config


def diffusers_model(recipe: str, target_params: int) -> torch.nn.Module:
    """A UNet2DConditionModel laid out like the recipe, its width scaled to match the count."""
    from diffusers import UNet2DConditionModel

    _, config = textimg_model(recipe)
    m, d = config.model, config.diffusion
    resolutions = [m.image_size // 2**level for level in range(len(m.channel_mult))]
    cross = [r in m.text_resolutions for r in resolutions]

    def build(width: int) -> torch.nn.Module:
        return UNet2DConditionModel(
            sample_size=m.image_size,
            in_channels=m.image_channels * (2 if config.super_resolution.low_res_size else 1),
            out_channels=m.image_channels * (2 if d.learned_variance else 1),
            layers_per_block=m.num_res_blocks,
            block_out_channels=tuple(width * k for k in m.channel_mult),
            down_block_types=tuple("CrossAttnDownBlock2D" if c else "DownBlock2D" for c in cross),
            up_block_types=tuple(
                "CrossAttnUpBlock2D" if c else "UpBlock2D" for c in reversed(cross)
            ),
            cross_attention_dim=m.text_dim,
            # diffusers reads this as the head *count* (diffusers#2011): give 64-channel heads.
            attention_head_dim=tuple(width * k // m.head_channels for k in m.channel_mult),
            norm_num_groups=32,
        )

    best = None
    for width in range(32, 4 * m.model_channels + 1, 32):
        with torch.device("meta"):
            count = sum(p.numel() for p in build(width).parameters())
        if best is None or abs(count - target_params) < abs(best[1] - target_params):
            best = (width, count)
    return build(best[0])


def build(recipe: str, kind: str, batch: int, device: str):
    """`(model, forward(x, t), config)` for textimg's model or the matched diffusers one."""
    torch.manual_seed(0)
    ours, config = textimg_model(recipe)
    m = config.model
    low = config.super_resolution.low_res_size  # super-resolution recipes also read a low-res image
    low_res = torch.zeros(batch, m.image_channels, low, low, device=device) if low else None
    if kind == "textimg":
        model = ours
        tokens = torch.randint(5, 100, (batch, TEXT_LENGTH), device=device)
        inputs = {"low_res": low_res} if low else {}

        def forward(x, t):
            return model(x, t, tokens[: len(x)], **{k: v[: len(x)] for k, v in inputs.items()})
    else:
        model = diffusers_model(recipe, sum(p.numel() for p in ours.parameters()))
        text = torch.randn(batch, TEXT_LENGTH, m.text_dim, device=device)

        def forward(x, t):
            if low:  # the same input layout as textimg's SuperResModel-style concatenation
                upsampled = torch.nn.functional.interpolate(low_res[: len(x)], size=x.shape[-2:])
                x = torch.cat([x, upsampled], dim=1)
            return model(x, t, encoder_hidden_states=text[: len(x)]).sample

    return model.to(device), forward, config


def forward_gflops(recipe: str, kind: str) -> float:
    """Forward GFLOPs for one image, counted on the meta device (no memory, no time)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        _, forward, config = build(recipe, kind, 1, "meta")
        m = config.model
        counter = FlopCounterMode(display=False)
        with counter:
            forward(torch.zeros(1, m.image_channels, m.image_size, m.image_size), torch.ones(1))
    return counter.get_total_flops() / 1e9


def measure(recipe: str, kind: str, batch: int, steps: int, device: str) -> dict:
    """Train `steps` timed steps (after one warm-up) of one model; runs in a subprocess."""
    model, forward, config = build(recipe, kind, batch, device)
    m = config.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, m.image_channels, m.image_size, m.image_size, device=device)
    t = torch.randint(0, 1000, (batch,), device=device).float()
    cuda = device == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)

    def step() -> None:
        with autocast:
            out = forward(x, t)
        out.float()[:, : m.image_channels].sub(x).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {
        "params": sum(p.numel() for p in model.parameters()),
        "images_per_s": batch * steps / seconds,
        "gflops": forward_gflops(recipe, kind),
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if cuda:
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        if peak:  # training = forward + backward = 3x forward FLOPs
            result["mfu"] = result["images_per_s"] * 3 * result["gflops"] * 1e9 / (peak * 1e12)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["base64", "base"])
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--one", nargs=2, metavar=("RECIPE", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.batch_size, args.steps, args.device)))
        return
    try:
        import diffusers  # noqa: F401

        kinds = ["textimg", "diffusers"]
    except ImportError:
        print("diffusers is not installed: baseline skipped (pip install diffusers)")
        kinds = ["textimg"]
    print(f"device {args.device}, batch {args.batch_size}, {args.steps} timed steps")
    header = "| recipe | model | params (M) | fwd GFLOP/img | images/s | peak MB | MFU |"
    print(header + " x diffusers per param |")
    print("|---|---|---|---|---|---|---|---|")
    for recipe in args.recipes:
        rows = {}
        for kind in kinds:
            command = [sys.executable, __file__, "--one", recipe, kind]
            command += ["--batch-size", str(args.batch_size), "--steps", str(args.steps)]
            output = subprocess.run(
                [*command, "--device", args.device], capture_output=True, text=True, check=True
            )
            rows[kind] = json.loads(output.stdout.strip().splitlines()[-1])
        baseline = rows.get("diffusers")
        for kind, row in rows.items():
            ratio = "-"
            if baseline:
                per_param = row["images_per_s"] / row["params"]
                ratio = f"{per_param / (baseline['images_per_s'] / baseline['params']):.2f}"
            mfu = f"{row['mfu']:.1%}" if "mfu" in row else "-"
            print(
                f"| {recipe} | {kind} | {row['params'] / 1e6:.1f} | {row['gflops']:.3g} "
                f"| {row['images_per_s']:.3f} "
                f"| {row['peak_mb']:.0f} | {mfu} | {ratio} |"
            )


if __name__ == "__main__":
    main()
