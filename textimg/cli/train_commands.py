"""Commands that train and use models: `train`, `sample`, `export`.

They only parse options and call `textimg.train`, `textimg.sampling` and `textimg.checkpoint`;
torch is imported inside the commands so `textimg --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from textimg.cli.app import app
from textimg.errors import TextimgError

if TYPE_CHECKING:
    import numpy as np

console = Console()

DeviceOption = Annotated[
    str | None, typer.Option("--device", help="cpu or cuda (default: cuda when available).")
]


def _data_overrides(data: list[str]) -> list[str]:
    """`--data PATH[=WEIGHT]` values as config overrides; weights are all given or none."""
    paths, weights = [], []
    for item in data:
        path, sep, weight = item.rpartition("=")
        if sep and path:
            try:
                weights.append(float(weight))
            except ValueError:
                raise TextimgError(
                    f"--data {item}: the weight after '=' must be a number"
                ) from None
            paths.append(path)
        else:
            paths.append(item)
    if weights and len(weights) != len(paths):
        raise TextimgError("give a weight to every --data source (PATH=WEIGHT) or to none")
    overrides = [f"data.shards={_toml_list(paths)}"]
    if weights:
        overrides.append(f"data.weights={weights}")
    return overrides


def _toml_list(values: list[str]) -> str:
    return (
        "["
        + ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "]"
    )


@app.command()
def train(
    recipe: Annotated[
        str, typer.Argument(help="Recipe name (tiny, base64, base, finetune) or a TOML file.")
    ],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Shards: a directory, tar or glob; repeat to mix sources, PATH=WEIGHT to weight "
            "them (e.g. --data synth=0.3 --data real=0.7).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default: out/RECIPE).")
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="The step the run ends at (with --resume too).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Images per process and micro-step.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of weights, noise and data order.")
    ] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(
            "--max-minutes",
            help="Stop after this many minutes of training, checkpointing first; --resume "
            "continues (a time budget for short GPU leases and CI).",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in --out from its checkpoint, with the settings it was saved "
            "with (RECIPE is not re-read); --steps, --set and the other options change them.",
        ),
    ] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            "--init-from",
            help="Start from this checkpoint's EMA weights (fine-tuning); a base checkpoint "
            "into a super-resolution recipe warm-starts its middle (the post's sandwich).",
        ),
    ] = None,
    device: DeviceOption = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override any setting as section.field=value, e.g. train.lr=3e-4."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print parameters, forward GFLOP and activation memory per image and the "
            "largest batch that fits --gpu-memory, measured on fake tensors; train nothing.",
        ),
    ] = False,
    gpu_memory: Annotated[
        str, typer.Option("--gpu-memory", help="GPU memory for --dry-run, e.g. 80GB or 141GB.")
    ] = "80GB",
) -> None:
    """Train a text-writing diffusion model; prints a short summary, saves the full config.

    Ctrl-C or SIGTERM checkpoints the last finished step; the same command continues the run.
    """
    from textimg.checkpoint import CHECKPOINT_NAME, read_checkpoint_config
    from textimg.config import apply_overrides, load_recipe
    from textimg.train import train as run_training

    run_dir = out or Path("out") / Path(recipe).stem
    # A resumed run keeps what it was started with (an lr horizon or a model set by --set at
    # launch); re-reading the recipe would silently change its schedule or refuse its model.
    config = read_checkpoint_config(run_dir / CHECKPOINT_NAME) if resume else load_recipe(recipe)
    options = list(overrides or [])
    if data:
        options += _data_overrides(data)
    named = (("steps", steps), ("batch_size", batch_size), ("seed", seed))
    for name, value in (*named, ("max_minutes", max_minutes)):
        if value is not None:
            options.append(f"train.{name}={value}")
    if device is not None:
        options.append(f'train.device="{device}"')
    config = apply_overrides(config, options)
    if dry_run:
        from textimg.footprint import measure, parse_memory, table

        memory = parse_memory(gpu_memory)
        console.print(table(Path(recipe).stem, config, measure(config), memory), markup=False)
        return
    Console(stderr=True).print(f"{'recipe':<7} {recipe}", markup=False, highlight=False)
    run_training(config, run_dir, resume=resume, init_from=init_from)
    console.print(f"done: {run_dir / 'checkpoint.pt'}")


def _read_prompts(prompt: list[str] | None, prompts_file: Path | None) -> list[str]:
    """Prompts from --prompt and --prompts FILE (one a line); a literal \\n becomes a newline."""
    lines = list(prompt or [])
    if prompts_file is not None:
        if not prompts_file.is_file():
            raise TextimgError(f"prompts file not found: {prompts_file}")
        lines += [line for line in prompts_file.read_text(encoding="utf-8").splitlines() if line]
    if not lines:
        raise TextimgError("give at least one --prompt TEXT or a --prompts FILE")
    return [line.replace("\\n", "\n") for line in lines]


@app.command()
def sample(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by textimg train.")],
    out: Annotated[
        Path, typer.Option("--out", help="A .png path for one grid, or a folder for one PNG each.")
    ],
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", help="Text to write; repeat for several; \\n starts a line."),
    ] = None,
    prompts_file: Annotated[
        Path | None, typer.Option("--prompts", help="A text file with one prompt per line.")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Images per prompt.")] = 1,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Sampling steps.")] = 50,
    sampler: Annotated[
        str, typer.Option("--sampler", help="ddim (deterministic) or ancestral.")
    ] = "ddim",
    guidance: Annotated[
        float, typer.Option("--guidance", help="Classifier-free guidance scale; 1 = none.")
    ] = 3.0,
    seed: Annotated[int, typer.Option("--seed", help="The same seed gives the same images.")] = 0,
    sr: Annotated[
        Path | None,
        typer.Option(
            "--sr",
            help="Super-resolution checkpoint: upsample every image too (the cascade); both "
            "sizes are written, the large ones as NAME-sr.png.",
        ),
    ] = None,
    sr_steps: Annotated[
        int | None, typer.Option("--sr-steps", min=1, help="Upsampling steps (default: --steps).")
    ] = None,
    sr_guidance: Annotated[
        float,
        typer.Option("--sr-guidance", help="Upsampling guidance; 1 = none, as the original."),
    ] = 1.0,
    device: DeviceOption = None,
) -> None:
    """Write images of the given prompts from a checkpoint's EMA weights."""
    import torch

    from textimg.checkpoint import load_checkpoint
    from textimg.sampling import sample as sample_images
    from textimg.super_resolution import check_cascade

    texts = _read_prompts(prompt, prompts_file)
    chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, diffusion, config = load_checkpoint(checkpoint, device=chosen)
    upsampler = None
    if sr is not None:
        upsampler = load_checkpoint(sr, device=chosen)
        check_cascade(config, upsampler[2])
    repeated = [text for text in texts for _ in range(n)]
    images = sample_images(model, diffusion, repeated, steps, guidance, seed, sampler)
    _write_images(images, out, n, "")
    if upsampler is not None:
        large = sample_images(*upsampler[:2], repeated, sr_steps or steps, sr_guidance, seed,
                              sampler, low_res=images)  # fmt: skip
        _write_images(large, out, n, "-sr")


def _write_images(images: np.ndarray, out: Path, n: int, suffix: str) -> None:
    """One grid (`out` ends in .png) or one PNG per image in the folder `out`; `suffix` tells
    the cascade's two sizes apart."""
    from textimg.images import image_grid, save_image

    if out.suffix.lower() == ".png":
        path = out.with_name(out.stem + suffix + out.suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(image_grid(images, columns=n), path)
        console.print(f"wrote {path} ({len(images) // n} prompts x {n})")
        return
    out.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        save_image(image, out / f"{index // n:03d}-{index % n:02d}{suffix}.png")
    console.print(f"wrote {len(images)} images to {out}")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by textimg train.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for model.safetensors + config.json (default: beside)."),
    ] = None,
) -> None:
    """Write a checkpoint's EMA weights as safetensors with the config beside them."""
    from textimg.checkpoint import export_checkpoint

    weights, config = export_checkpoint(checkpoint, out or checkpoint.parent / "export")
    console.print(f"wrote {weights} and {config}")
