"""Commands that train and use models: `train`, `sample`, `export`.

They only parse options and call `textimg.train`, `textimg.sampling` and `textimg.checkpoint`;
torch is imported inside the commands so `textimg --help` stays instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from textimg.cli.app import app
from textimg.cli.options import (
    DeviceOption,
    GuidanceOption,
    OverwriteOption,
    PromptsOption,
    SamplerOption,
    SamplesOption,
    SeedOption,
    SrGuidanceOption,
    SrStepsOption,
    StepsOption,
    float_option,
    number,
    out_option,
    seed_option,
    user_path,
)
from textimg.cli.progress import train_progress
from textimg.errors import TextimgError
from textimg.recipe_files import recipe_names

if TYPE_CHECKING:
    import numpy as np


console = Console()

GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
"""`sample --out` with one of these suffixes is one grid image; any other path is a folder."""


def _data_overrides(data: list[str]) -> list[str]:
    """`--data PATH[=WEIGHT]` values as config overrides; weights are all given or none, each a
    finite number (as every number option is checked)."""
    paths, weights = [], []
    for item in data:
        path, sep, weight = item.rpartition("=")
        if sep and path:
            try:
                weights.append(number(f"--data {item}: the weight", float)(weight))
            except typer.BadParameter:
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


def _option_overrides(overrides: list[str], data: list[str], named: dict[str, object]) -> list[str]:
    """`--set` values, then `--data` and the named options that were given, as overrides."""
    options = [*overrides, *(_data_overrides(data) if data else [])]
    for setting, value in named.items():
        if value is not None:
            options.append(
                f'{setting}="{value}"' if isinstance(value, str) else f"{setting}={value}"
            )
    return options


def _toml_list(values: list[str]) -> str:
    return (
        "["
        + ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "]"
    )


@app.command()
def train(
    recipe: Annotated[
        str,
        typer.Argument(
            help=f"A recipe ({', '.join(recipe_names())}) or a TOML file.", show_default=False
        ),
    ],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Shards: a directory, tar or glob; repeat to mix sources, PATH=WEIGHT to weight "
            "them (e.g. --data synth=0.3 --data real=0.7).",
        ),
    ] = None,
    out: Annotated[Path | None, out_option("Run directory (default: out/RECIPE).")] = None,
    steps: Annotated[
        int | None,
        typer.Option("--steps", min=1, help="The step the run ends at (with --resume too)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Training images per process and micro-step."),
    ] = None,
    seed: Annotated[int | None, seed_option("Seed of weights, noise and data order.")] = None,
    max_minutes: Annotated[
        float | None,
        float_option(
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
            parser=user_path,
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
    overwrite: OverwriteOption = False,
) -> None:
    """Train a text-writing diffusion model; prints a short summary, saves the full config.

    Ctrl-C or SIGTERM checkpoints the last finished step; the same command continues the run.
    """
    from textimg.checkpoint import CHECKPOINT_NAME, read_checkpoint_config
    from textimg.config import apply_overrides, load_recipe
    from textimg.files import check_output_dir
    from textimg.output_owner import hold_output
    from textimg.train import train as run_training

    run_dir = out or Path("out") / Path(recipe).stem
    # A resumed run keeps what it was started with (an lr horizon or a model set by --set at
    # launch); re-reading the recipe would silently change its schedule or refuse its model.
    config = read_checkpoint_config(run_dir / CHECKPOINT_NAME) if resume else load_recipe(recipe)
    named = {"train.steps": steps, "train.batch_size": batch_size, "train.seed": seed,
             "train.max_minutes": max_minutes, "runtime.device": device}  # fmt: skip
    config = apply_overrides(config, _option_overrides(overrides or [], data or [], named))
    if dry_run:
        from textimg.footprint import measure, parse_memory, table

        memory = parse_memory(gpu_memory)
        console.print(table(Path(recipe).stem, config, measure(config), memory), markup=False)
        return
    check_output_dir(run_dir)
    Console(stderr=True).print(f"{'recipe':<7} {recipe}", markup=False, highlight=False)
    with hold_output(run_dir), train_progress(config, run_dir) as report:
        run_training(config, run_dir, resume, init_from, report, overwrite)
    console.print(f"done: {run_dir / 'checkpoint.pt'}")


def _read_prompts(prompt: list[str] | None, prompts_file: Path | None) -> list[str]:
    """Prompts from --prompt and the --prompts file (text or JSONL, read by the one prompt
    parser every command uses); a literal \\n in --prompt becomes a newline."""
    from textimg.eval.scoring import prompt_texts

    texts = [text.replace("\\n", "\n") for text in prompt or []]
    if prompts_file is not None:
        texts += prompt_texts(prompts_file)
    if not texts:
        raise TextimgError("give at least one --prompt TEXT or a --prompts FILE")
    return texts


@app.command()
def sample(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            parser=user_path, help="A checkpoint written by textimg train.", show_default=False
        ),
    ],
    out: Annotated[
        Path,
        out_option(
            f"A {'/'.join(GRID_SUFFIXES)} path for one grid, or a folder for one PNG per image."
        ),
    ],
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", help="Text to write; repeat for several; \\n starts a line."),
    ] = None,
    prompts_file: PromptsOption = None,
    samples: SamplesOption = 1,
    steps: StepsOption = 50,
    sampler: SamplerOption = "ddim",
    guidance: GuidanceOption = 3.0,
    seed: SeedOption = 0,
    sr: Annotated[
        Path | None,
        typer.Option(
            "--sr",
            parser=user_path,
            help="Super-resolution checkpoint: upsample every image too (the cascade); both "
            "sizes are written, the large ones as NAME-sr.png.",
            show_default=False,
        ),
    ] = None,
    sr_steps: SrStepsOption = None,
    sr_guidance: SrGuidanceOption = 1.0,
    device: DeviceOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Write images of the given prompts from a checkpoint's EMA weights."""
    from textimg.checkpoint import load_checkpoint, read_checkpoint_config
    from textimg.distributed import Placement, resolve_device
    from textimg.sampling import images_that_fit
    from textimg.sampling import sample as sample_images
    from textimg.super_resolution import check_cascade
    from textimg.upsampler import Upsampler

    texts = _read_prompts(prompt, prompts_file)
    suffixes = ["", "-sr"] if sr is not None else [""]
    _check_outputs(out, len(texts), samples, suffixes, overwrite)
    config = read_checkpoint_config(checkpoint)
    if sr is not None:
        check_cascade(config, read_checkpoint_config(sr))
    chosen = resolve_device(device or "auto", Placement.from_environment())
    model, diffusion, config = load_checkpoint(checkpoint, device=chosen)
    repeated = [text for text in texts for _ in range(samples)]
    with _memory_for(len(texts), samples, chosen, lambda n: images_that_fit(model, diffusion,
                                                                        texts[0], n)):  # fmt: skip
        images = sample_images(model, diffusion, repeated, steps, guidance, seed, sampler)
    _write_images(images, out, samples, "")
    if sr is not None:
        upsampler = Upsampler(sr, chosen, sr_steps or steps, sr_guidance, sampler)
        with _memory_for(len(texts), samples, chosen, lambda n: 0):
            upscaled = upsampler.arrays(images, repeated, seed)
        _write_images(upscaled, out, samples, "-sr")


@contextmanager
def _memory_for(
    prompts: int, samples: int, device: object, fitting: Callable[[int], int]
) -> Iterator[None]:
    """Turn an allocation that failed while drawing every image in one batch into one line that
    says how many were asked for at once, how many fit (`fitting(asked)`, probed only then; 0
    when unknown) and how to ask for fewer."""
    from textimg.sampling import out_of_memory

    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not out_of_memory(error):
            raise
        asked = prompts * samples
        fit = fitting(asked)
        room = f"about {fit} fit" if fit else "fewer fit"
        raise TextimgError(
            f"out of memory on {device} drawing {asked} images at once ({prompts} "
            f"prompt(s) x --samples {samples}); sample draws them in one batch and {room}: "
            "lower --samples or give fewer prompts per command"
        ) from None


def _is_grid(out: Path) -> bool:
    return out.suffix.lower() in GRID_SUFFIXES


def _image_paths(out: Path, count: int, samples: int, suffix: str) -> list[Path]:
    """Where `_write_images` puts `count` prompts x `samples` images: one grid, or one PNG each."""
    if _is_grid(out):
        return [out.with_name(out.stem + suffix + out.suffix)]
    return [
        out / f"{i // samples:03d}-{i % samples:02d}{suffix}.png" for i in range(count * samples)
    ]


def _check_outputs(
    out: Path, count: int, samples: int, suffixes: list[str], overwrite: bool
) -> None:
    """Refuse before sampling an --out that cannot be written or whose images already exist."""
    from textimg.files import check_output_dir, check_output_file

    if not _is_grid(out):
        if out.suffix and not out.is_dir():
            raise TextimgError(
                f"--out {out}: a grid is a {'/'.join(GRID_SUFFIXES)} file; a folder for one "
                "PNG per image is a name without an extension"
            )
        check_output_dir(out)
    for suffix in suffixes:
        for path in _image_paths(out, count, samples, suffix):
            check_output_file(path, overwrite)


def _write_images(images: np.ndarray, out: Path, samples: int, suffix: str) -> None:
    """One grid (`out` is an image file name) or one PNG per image in the folder `out`;
    `suffix` tells the cascade's two sizes apart."""
    from textimg.images import image_grid, save_image

    paths = _image_paths(out, len(images) // samples, samples, suffix)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    if _is_grid(out):
        save_image(image_grid(images, columns=samples), paths[0])
        console.print(f"wrote {paths[0]} ({len(images) // samples} prompts x {samples})")
        return
    for image, path in zip(images, paths, strict=True):
        save_image(image, path)
    console.print(f"wrote {len(images)} images to {out}")


@app.command()
def export(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            parser=user_path, help="A checkpoint written by textimg train.", show_default=False
        ),
    ],
    out: Annotated[
        Path | None,
        out_option("Folder for model.safetensors + config.json (default: export/ beside it)."),
    ] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Write a checkpoint's EMA weights as safetensors with the config beside them."""
    from textimg.checkpoint import export_checkpoint

    weights, config = export_checkpoint(checkpoint, out or checkpoint.parent / "export", overwrite)
    console.print(f"wrote {weights} and {config}")
