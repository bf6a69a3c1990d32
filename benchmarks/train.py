"""Training throughput of textimg's U-Net against a diffusers U-Net of matched size, same run.

Three modes. The comparison (default): for each recipe (default `base64` and `base`; `sr` and
`tiny-sr` are the super-resolution stage, which also reads a zero low-res image of the recipe's
`low_res_size`), times full training steps (forward, backward, AdamW) of textimg's model and of a
`diffusers.UNet2DConditionModel` whose width is chosen so its parameter count matches, at the
same resolution, channels and text length (the diffusers model gets random text states of the
same length; it has no text encoder of its own, so textimg's count includes its encoder). Each
model runs in its own subprocess, so peak memory is its own: peak RSS on CPU,
`torch.cuda.max_memory_allocated` on GPU, where model FLOP utilisation (MFU) is reported too.
Both models are stepped as the trainer steps (bf16 autocast and fused AdamW on CUDA;
`torch.compile` where `--compile` says, by default as `train.compile = "auto"`: on CUDA).
Target: at least the diffusers model's images/s per parameter.

`--sweep B ...`: textimg alone at each batch size, with the `--dry-run` memory estimate
(`textimg.footprint`) beside the measured peak; a batch that runs out of memory says so.

`--parity STEPS`: bf16 autocast (norms in bf16, `textimg.model.layers.low_precision`) against
fp32 on the same batches, timesteps and noise, `tiny` recipe, with a second fp32 run from
another initialisation as the scale of run-to-run noise. Target: mean loss over the last
quarter of the steps within 3% of fp32.

    .venv/bin/python benchmarks/train.py --steps 2 --batch-size 2
    .venv/bin/python benchmarks/train.py --device cuda --batch-size 32 --steps 10
    .venv/bin/python benchmarks/train.py --recipes base64 --sweep 64 128 256 --device cuda
    .venv/bin/python benchmarks/train.py --parity 300 --batch-size 16
    benchmarks/gpu_check.sh          # all of it on a GPU, one command

diffusers is only needed for the baseline (`pip install diffusers`); without it it is skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

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


def measure(recipe: str, kind: str, batch: int, steps: int, device: str, compiled: bool) -> dict:
    """Train `steps` timed steps (after untimed warm-up) of one model; runs in a subprocess."""
    model, forward, config = build(recipe, kind, batch, device)
    m = config.model
    cuda = device == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(batch, m.image_channels, m.image_size, m.image_size, device=device)
    t = torch.randint(0, 1000, (batch,), device=device).float()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    if compiled:
        forward = torch.compile(forward)

    def step() -> None:
        with autocast:
            out = forward(x, t)
        out.float()[:, : m.image_channels].sub(x).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    warmup_started = time.perf_counter()
    for _ in range(2 if compiled else 1):  # compiling, cuDNN autotuning, allocator growth
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    warmup = start - warmup_started
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
        "warmup_s": warmup,
    }
    if cuda:
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        if peak:  # training = forward + backward = 3x forward FLOPs
            result["mfu"] = result["images_per_s"] * 3 * result["gflops"] * 1e9 / (peak * 1e12)
    return result


def run_one(recipe: str, kind: str, batch: int, args: argparse.Namespace) -> dict:
    """`measure` in its own process (its own peak memory, an OOM kills only it)."""
    command = [sys.executable, __file__, "--one", recipe, kind, "--batch-size", str(batch)]
    command += ["--steps", str(args.steps), "--device", args.device, "--compile", args.compile]
    output = subprocess.run(command, capture_output=True, text=True)
    if output.returncode:
        lines = output.stderr.strip().splitlines() or [f"exit status {output.returncode}"]
        memory = "out of memory" in output.stderr.lower()
        return {"error": "out of memory" if memory else lines[-1][:120]}
    return json.loads(output.stdout.strip().splitlines()[-1])


def compiles(setting: str, device: str) -> bool:
    """`--compile auto|on|off`, auto as the trainer's `train.compile = "auto"`: on CUDA."""
    return setting == "on" or (setting == "auto" and device == "cuda")


def compare(args: argparse.Namespace) -> None:
    """The default mode: textimg against the parameter-matched diffusers U-Net, per recipe."""
    try:
        import diffusers  # noqa: F401

        kinds = ["textimg", "diffusers"]
    except ImportError:
        print("diffusers is not installed: baseline skipped (pip install diffusers)")
        kinds = ["textimg"]
    compiled = compiles(args.compile, args.device)
    print(f"device {args.device}, batch {args.batch_size}, {args.steps} timed steps, ", end="")
    print(f"torch.compile {'on' if compiled else 'off'}")
    header = "| recipe | model | params (M) | fwd GFLOP/img | images/s | peak MB | MFU |"
    print(header + " warm-up s | x diffusers per param |")
    print("|---|---|---|---|---|---|---|---|---|")
    for recipe in args.recipes:
        rows = {kind: run_one(recipe, kind, args.batch_size, args) for kind in kinds}
        baseline = rows.get("diffusers")
        for kind, row in rows.items():
            if "error" in row:
                print(f"| {recipe} | {kind} | failed: {row['error']} | | | | | | |")
                continue
            ratio = "-"
            if baseline and "error" not in baseline:
                per_param = row["images_per_s"] / row["params"]
                ratio = f"{per_param / (baseline['images_per_s'] / baseline['params']):.2f}"
            mfu = f"{row['mfu']:.1%}" if "mfu" in row else "-"
            print(
                f"| {recipe} | {kind} | {row['params'] / 1e6:.1f} | {row['gflops']:.3g} "
                f"| {row['images_per_s']:.3f} | {row['peak_mb']:.0f} | {mfu} "
                f"| {row['warmup_s']:.1f} | {ratio} |"
            )


def sweep(args: argparse.Namespace) -> None:
    """textimg alone at each batch size, measured peak beside the dry run's estimate."""
    from textimg.config import load_recipe
    from textimg.footprint import measure as footprint_of

    compiled = compiles(args.compile, args.device)
    print(f"device {args.device}, {args.steps} timed steps, ", end="")
    print(f"torch.compile {'on' if compiled else 'off'}, {TEXT_LENGTH}-token transcripts")
    print("| recipe | batch | images/s | peak MB | dry-run estimate MB | MFU |")
    print("|---|---|---|---|---|---|")
    for recipe in args.recipes:
        config = load_recipe(recipe)
        model = dataclasses.replace(config.model, context_length=TEXT_LENGTH)
        footprint = footprint_of(dataclasses.replace(config, model=model))
        for batch in args.sweep:
            # The benchmark keeps no EMA copy and holds no CUDA context in its peak.
            estimate = footprint.step_bytes(batch) - footprint.parameters * 4 - 2**30
            row = run_one(recipe, "textimg", batch, args)
            if "error" in row:
                print(
                    f"| {recipe} | {batch} | failed: {row['error']} | | {estimate / 2**20:.0f} | |"
                )
                continue
            mfu = f"{row['mfu']:.1%}" if "mfu" in row else "-"
            print(
                f"| {recipe} | {batch} | {row['images_per_s']:.1f} | {row['peak_mb']:.0f} "
                f"| {estimate / 2**20:.0f} | {mfu} |"
            )


def text_images(count: int, size: int, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """`count` images of 2-3 random characters, dark on light, in [-1, 1], and their texts."""
    rng = random.Random(seed)
    font = ImageFont.load_default(size=size // 2)
    images, texts = [], []
    for _ in range(count):
        text = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=rng.randint(2, 3)))
        image = Image.new("L", (size, size), rng.randint(180, 255))
        ImageDraw.Draw(image).text((2, size // 4), text, fill=rng.randint(0, 60), font=font)
        images.append(torch.from_numpy(np.asarray(image, dtype=np.float32))[None])
        texts.append(text)
    return torch.stack(images) / 127.5 - 1, texts


def parity_losses(steps: int, batch: int, bf16: bool, seed: int, device: str) -> list[float]:
    """Per-step losses of the `tiny` recipe trained `steps` steps: the batches, timesteps and
    noise depend on the step alone, the initial weights on `seed`."""
    from textimg.config import load_recipe
    from textimg.diffusion import GaussianDiffusion
    from textimg.model import CharTokenizer, build_model
    from textimg.train import conditioning_tokens, learning_rate, parameter_groups

    config = load_recipe("tiny")
    cfg, m = config.train, config.model
    images, texts = text_images(512, m.image_size)
    torch.manual_seed(seed)
    model = build_model(config).to(device)
    diffusion = GaussianDiffusion.from_config(config.diffusion)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2)
    )
    tokenizer = CharTokenizer(m.context_length)
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16)
    losses = []
    for step in range(steps):
        generator = torch.Generator().manual_seed(step)
        chosen = torch.randint(0, len(texts), (batch,), generator=generator)
        x0 = images[chosen].to(device)
        batch_texts = [texts[i] for i in chosen]
        tokens, _ = conditioning_tokens(batch_texts, tokenizer, 0.1, generator)
        t = diffusion.sample_timesteps(batch, generator, torch.device(device))
        noise = torch.randn(x0.shape, generator=generator).to(device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        with autocast:
            loss = diffusion.training_losses(model, x0, t, tokens.to(device), noise)["loss"].mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def parity(args: argparse.Namespace) -> None:
    """bf16 against fp32 training of `tiny`, with fp32 from another seed as the noise scale."""
    runs = {
        "fp32": parity_losses(args.parity, args.batch_size, False, 0, args.device),
        "bf16 autocast, bf16 norms": parity_losses(
            args.parity, args.batch_size, True, 0, args.device
        ),
        "fp32, other init seed": parity_losses(args.parity, args.batch_size, False, 1, args.device),
    }
    tail = max(1, args.parity // 4)
    means = {name: sum(losses[-tail:]) / tail for name, losses in runs.items()}
    reference = means["fp32"]
    print(f"tiny, batch {args.batch_size}, {args.parity} steps on {args.device}; ", end="")
    print(f"mean loss over the last {tail} steps")
    print("| run | first loss | mean loss, last quarter | x fp32 |")
    print("|---|---|---|---|")
    for name, losses in runs.items():
        print(f"| {name} | {losses[0]:.4f} | {means[name]:.4f} | {means[name] / reference:.3f} |")
    ratio = means["bf16 autocast, bf16 norms"] / reference
    seed_gap = abs(means["fp32, other init seed"] / reference - 1)
    differs = runs["bf16 autocast, bf16 norms"] != runs["fp32"]  # autocast really was on
    print(json.dumps({"bf16_ratio": ratio, "seed_gap": seed_gap, "bf16_differs": differs}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["base64", "base"])
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--sweep", type=int, nargs="+", metavar="BATCH", help="batch sizes")
    parser.add_argument("--parity", type=int, metavar="STEPS", help="bf16 vs fp32 loss check")
    parser.add_argument("--one", nargs=2, metavar=("RECIPE", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        compiled = compiles(args.compile, args.device)
        result = measure(*args.one, args.batch_size, args.steps, args.device, compiled)
        print(json.dumps(result))
    elif args.parity:
        parity(args)
    elif args.sweep:
        sweep(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
