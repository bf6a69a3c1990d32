"""The trainer: one linear `train(config, out)` in plain PyTorch, read top to bottom.

Single process by default; under `torchrun` (which sets `RANK`) it runs DDP, NCCL on GPUs and gloo
on CPUs. Every random draw of a micro-step (timesteps, noise, text dropout, network dropout) comes
from a seed derived from (seed, step, rank, micro-step), and the data stream is a pure function
of the seed and the number of batches consumed, so `--resume` continues exactly: on CPU the
losses after resuming equal those of an uninterrupted run. Ctrl-C or SIGTERM stops after the
update in flight and checkpoints that step; the same command, run again, continues a run whose
saved config it matches.

Files in `out`: `config.json`, `checkpoint.pt` (latest, atomic), `metrics.jsonl` (one line per
logged step), `samples/step-NNNNNN.png` (a grid of fixed prompts; a super-resolution run
upsamples its first batch's low-res images instead) and `loss.png` at the end.

A super-resolution run (`super_resolution.low_res_size` set) degrades each high-res batch on the
fly (`textimg.super_resolution`); `--init-from` a base checkpoint warm-starts it as the post's
sandwich (`textimg.warm_start`), and `--init-from` a super-resolution checkpoint fine-tunes it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from textimg.checkpoint import CHECKPOINT_NAME, read_checkpoint, save_checkpoint
from textimg.config import RunConfig, TrainConfig, from_dict, to_dict
from textimg.data.reader import ShardStream, make_loader
from textimg.diffusion import GaussianDiffusion
from textimg.distributed import Placement, resolve_device, start_process_group, wants_cuda
from textimg.errors import TextimgError
from textimg.files import write_text_atomic
from textimg.images import image_grid, save_image
from textimg.interrupt import Interrupted, deferred, signals_interrupt
from textimg.model import CharTokenizer, build_model
from textimg.sampling import sample
from textimg.super_resolution import preview_inputs, training_inputs
from textimg.warm_start import outer_parameter_names, warm_start

SELF_CONDITION_SHARE = 0.5
"""Share of a self-conditioned model's training steps that feed it a draft x0 (Chen et al.)."""


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup, then cosine decay to `min_lr_ratio * lr` at `decay_steps`, flat after."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(
        1.0, (step - config.warmup_steps) / max(1, config.decay_steps - config.warmup_steps)
    )
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def ema_decay(step: int, config: TrainConfig) -> float:
    """EMA warm-up (k-diffusion's EMAWarmup): early averages forget the random init quickly."""
    return min(config.ema_decay, 1 - (1 + step) ** -config.ema_warmup_power)


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    outer: frozenset[str] = frozenset(),
    outer_lr_scale: float = 1.0,
) -> list[dict]:
    """Weight decay on conv and linear weights only: never on norms, embeddings, biases or gains.

    With `outer_lr_scale != 1` the `outer` parameters (a warm-started super-resolution model's
    fresh bread) get their own groups whose `lr_scale` multiplies the scheduled learning rate.
    """
    decayed = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)}
    params = list(model.named_parameters())
    parts: list[tuple[list[nn.Parameter], dict]] = [([p for _, p in params], {})]
    if outer_lr_scale != 1.0:
        parts = [
            ([p for name, p in params if name not in outer], {"lr_scale": 1.0}),
            ([p for name, p in params if name in outer], {"lr_scale": outer_lr_scale}),
        ]
    return [
        {
            "params": [p for p in chosen if (id(p) in decayed) == decay],
            "weight_decay": weight_decay if decay else 0.0,
        }
        | extra
        for chosen, extra in parts
        for decay in (True, False)
    ]


def uses_channels_last(cfg: TrainConfig, cuda: bool) -> bool:
    """Whether the run keeps its convolution weights channels-last (`train.memory_format`:
    auto = on the CPU)."""
    return cfg.memory_format == "channels_last" or (cfg.memory_format == "auto" and not cuda)


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """The training step's autocast: bf16 on CUDA (weights, AdamW and EMA stay fp32), none on the
    CPU, where bf16 trained no faster (0.94-1.00x, docs/training.md)."""
    if device.type == "cuda":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def uses_compile(cfg: TrainConfig, cuda: bool) -> bool:
    """Whether the run trains a `torch.compile`d model (`train.compile`: auto = on CUDA)."""
    return cfg.compile is True or (cfg.compile == "auto" and cuda)


def text_length_bucket(length: int, context_length: int) -> int:
    """The padded length of a batch whose longest transcript has `length` tokens: the next power
    of two from 8, at most the context. A handful of shapes, so a compiled model compiles once
    per bucket instead of once per longest transcript."""
    return min(context_length, max(8, 1 << (length - 1).bit_length()))


def micro_step_seed(seed: int, step: int, rank: int, micro: int) -> int:
    """A 63-bit seed from integers only (string seeding is sha512-based, unlike `hash()`)."""
    return random.Random(f"{seed}-{step}-{rank}-{micro}").getrandbits(63)


def conditioning_tokens(
    texts: list[str], tokenizer: CharTokenizer, dropout: float, generator: torch.Generator
) -> tuple[torch.Tensor, int]:
    """Tokens with a `dropout` share of null transcripts (classifier-free guidance training),
    and how many texts were truncated. The transcript is swapped, never skipped, so every
    parameter takes part in every step (DDP needs that)."""
    longest = max(len(text) for text in texts) + 2  # start and end
    length = text_length_bucket(min(longest, tokenizer.context_length), tokenizer.context_length)
    encoded = tokenizer.encode_batch(texts, pad_to=length)
    drop = torch.rand(len(texts), generator=generator) < dropout
    null = tokenizer.null_tokens(len(texts), encoded.tokens.shape[1])
    return torch.where(drop[:, None], null, encoded.tokens), len(encoded.truncated)


def _out_of_time(
    started: float, max_minutes: float, device: torch.device, distributed: bool
) -> bool:
    """Whether the time budget is spent; under DDP rank 0's clock decides for every rank, so all
    ranks stop at the same step (and checkpoint it) instead of hanging in a collective."""
    if not max_minutes:
        return False
    spent = time.perf_counter() - started >= max_minutes * 60
    if not distributed:
        return spent
    flag = torch.tensor(float(spent), device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def _note_nonfinite(
    first_bad: torch.Tensor, step: int, loss: torch.Tensor, grad_norm: torch.Tensor
) -> torch.Tensor:
    """`first_bad` = (step, loss) of the first step whose loss or gradient norm is not finite,
    (0, 0) while there is none; updated on the device, so the step does not wait for the GPU."""
    bad = ~(torch.isfinite(loss) & torch.isfinite(grad_norm)) & (first_bad[0] == 0)
    return torch.where(bad, torch.stack([torch.full_like(loss, step), loss]), first_bad)


def _stop_if_nonfinite(first_bad: torch.Tensor, checkpoint_path: Path) -> None:
    """Raise if `_note_nonfinite` saw a bad step; called before anything is written, so a
    checkpoint never holds the weights of a diverged run."""
    step, loss = first_bad.tolist()
    if step:
        kept = (
            f"the last good checkpoint {checkpoint_path} is kept"
            if checkpoint_path.exists()
            else "no checkpoint was written yet"
        )
        raise TextimgError(f"loss became {loss} at step {int(step)}; stopped, {kept}")


def write_loss_plot(metrics_path: Path, out: Path) -> None:
    """`loss.png`: loss against step from `metrics.jsonl`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot([r["step"] for r in rows], [r["loss"] for r in rows], linewidth=0.8)
    axis.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)


def _keep_metrics_until(path: Path, step: int) -> None:
    """Drop lines logged after `step` by a run that was killed before its next checkpoint."""
    if path.exists():
        lines = [
            line
            for line in path.read_text().splitlines()
            if line and json.loads(line)["step"] <= step
        ]
        path.write_text("".join(line + "\n" for line in lines))


def _same_run_unfinished(checkpoint_path: Path, config: RunConfig) -> bool:
    """Whether `checkpoint_path` is this very run (the same config) stopped before its last
    step: then the same command continues it, as `pack` and `eval` continue theirs."""
    if not checkpoint_path.exists():
        return False
    state = read_checkpoint(checkpoint_path, mmap=True)
    return from_dict(state["config"]) == config and state["step"] < config.train.steps


@contextlib.contextmanager
def _on_stop(keep: Callable[[], str]) -> Iterator[None]:
    """Turn Ctrl-C or SIGTERM inside the block into `Interrupted`, after `keep()` recorded the
    work done; its return value is the line the CLI prints."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(keep()) from None


def run_summary(
    config: RunConfig,
    parameters: int,
    start_step: int,
    device: torch.device,
    processes: int,
    out: Path,
) -> str:
    """The few lines a run starts with; every setting is in `out/config.json`."""
    model, cfg = config.model, config.train
    channels = "grayscale" if model.image_channels == 1 else f"{model.image_channels} channels"
    size = f"{model.image_size} px"
    if config.super_resolution.low_res_size:
        size = f"{config.super_resolution.low_res_size} -> {size} (super-resolution)"
    resumed = f" (resumed at step {start_step})" if start_step else ""
    accumulation = f" x {cfg.grad_accum} accumulated" if cfg.grad_accum > 1 else ""
    precision = "bf16" if device.type == "cuda" else "fp32"
    data = ", ".join(config.data.shards) or "none"
    rows = [
        ("model", f"{parameters / 1e6:.2f}M parameters, {size}, {channels}, "
                  f"{model.conditioning} text, {config.diffusion.prediction} prediction"),
        ("steps", f"{start_step} -> {cfg.steps}{resumed}, lr {cfg.lr:g}, "
                  f"checkpoint every {cfg.checkpoint_every}"),
        ("batch", f"{cfg.batch_size} per process x {processes} process(es){accumulation}"),
        ("device", f"{device}, {precision}"),
        ("data", data),
        ("out", f"{out} (every setting: {out / 'config.json'})"),
    ]  # fmt: skip
    return "\n".join(f"{name:<7} {value}" for name, value in rows)


def train(
    config: RunConfig, out: Path, resume: bool = False, init_from: Path | None = None
) -> nn.Module:
    """Train until `config.train.steps`; returns the trained (raw, non-EMA) model."""
    cfg = config.train
    out = Path(out)
    checkpoint_path = out / CHECKPOINT_NAME

    # Processes and devices: DDP exactly when torchrun says so.
    place = Placement.from_environment()
    want_cuda = wants_cuda(cfg.device)
    channels_last = uses_channels_last(cfg, want_cuda)
    owns_group = start_process_group(place, want_cuda)
    distributed = place.distributed
    rank, world_size, local_rank = place.rank, place.world_size, place.local_rank
    device = resolve_device(cfg.device, place)
    if want_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    is_main = rank == 0
    console = Console(stderr=True, quiet=not is_main)

    # The run directory: a fresh run never overwrites one, a resumed one must match its model.
    state = None
    if resume or _same_run_unfinished(checkpoint_path, config):
        state = read_checkpoint(checkpoint_path)
        saved = from_dict(state["config"])
        model_settings = (config.model, config.diffusion, config.super_resolution)
        if (saved.model, saved.diffusion, saved.super_resolution) != model_settings:
            raise TextimgError(
                f"{checkpoint_path} was trained with another model or diffusion config"
            )
        if state["step"] >= cfg.steps:
            raise TextimgError(
                f"{checkpoint_path} is already at step {state['step']}; pass a larger --steps"
            )
    elif checkpoint_path.exists():
        raise TextimgError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "config.json", json.dumps(to_dict(config), indent=2) + "\n")

    # Model, EMA, optimizer: same init on every rank (DDP also broadcasts rank 0's weights).
    torch.manual_seed(cfg.seed)
    model = build_model(config).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    diffusion = GaussianDiffusion.from_config(config.diffusion)
    super_resolution = config.super_resolution
    if init_from is not None and state is None:
        source = read_checkpoint(init_from)
        source_config = from_dict(source["config"])
        if super_resolution.low_res_size and not source_config.super_resolution.low_res_size:
            # A base model into a super-resolution one: the post's sandwich.
            started = warm_start(model, config, source["ema"], source_config.model)
            console.print(started.summary())
        else:
            try:
                model.load_state_dict(source["ema"])
            except RuntimeError as error:
                raise TextimgError(
                    f"--init-from {init_from} does not fit this model: {error}"
                ) from None
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    ema_parameters, model_parameters = list(ema.parameters()), list(model.parameters())
    outer = frozenset()
    if super_resolution.low_res_size and super_resolution.outer_lr_scale != 1.0:
        outer = frozenset(outer_parameter_names(config, model))
    optimizer = torch.optim.AdamW(
        parameter_groups(model, cfg.weight_decay, outer, super_resolution.outer_lr_scale),
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        fused=cfg.fused_optimizer,
    )
    start_step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        start_step = state["step"]
    if is_main:
        parameters = sum(p.numel() for p in model.parameters())
        summary = run_summary(config, parameters, start_step, device, world_size, out)
        console.print(summary, markup=False, highlight=False)
    raw_model = model
    if uses_compile(cfg, want_cuda):
        model = torch.compile(model)
    if distributed:
        model = DistributedDataParallel(model, device_ids=[local_rank] if want_cuda else None)

    # Data: one long-lived iterator, positioned after the batches already trained on.
    data_position = {
        "batches": start_step * cfg.grad_accum,
        "world_size": world_size,
        "workers": config.data.num_workers,
    }
    if state is not None and state["data_position"] != data_position:
        console.print(
            f"[yellow]note: data position was {state['data_position']}, now {data_position}: "
            "the data order differs from an uninterrupted run"
        )
    stream = ShardStream(
        config.data,
        config.model.image_size,
        config.model.image_channels,
        cfg.batch_size,
        cfg.seed,
        rank,
        world_size,
        start_batch=data_position["batches"],
    )
    loader = make_loader(stream, pin_memory=want_cuda)
    batches = iter(loader)
    tokenizer = CharTokenizer(config.model.context_length)
    autocast = autocast_for(device)
    metrics_path = out / "metrics.jsonl"
    if is_main:
        _keep_metrics_until(metrics_path, start_step)

    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeRemainingColumn(),
        console=console,
        disable=not is_main,
    )
    task = progress.add_task("", total=cfg.steps, completed=start_step)
    training_started = time.perf_counter()
    # No step reads a value back from the device, so the host queues the next step while the
    # GPU runs this one: losses, gradient norms and the non-finite check are read at the steps
    # that log, checkpoint or sample, and images/s is timed over the steps since the last log.
    first_bad = torch.zeros(2, device=device)
    logged_at, logged_step = training_started, start_step
    preview = None  # a super-resolution run's grids upsample the first batch's low-res images
    completed = saved = start_step  # the last step whose update finished, the checkpoint's step

    def write_checkpoint(step: int) -> None:
        data_position["batches"] = step * cfg.grad_accum
        save_checkpoint(
            checkpoint_path,
            {
                "config": to_dict(config),
                "step": step,
                "model": raw_model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "data_position": data_position,
            },
        )

    def keep_completed() -> str:
        """On Ctrl-C or SIGTERM: checkpoint the last whole step, say what was kept."""
        if completed == 0:
            return "stopped before the first step finished; nothing to keep"
        _stop_if_nonfinite(first_bad, checkpoint_path)
        if is_main and completed > saved:
            write_checkpoint(completed)
        return f"{checkpoint_path} holds step {completed} of {cfg.steps}; the same command resumes"

    with progress, signals_interrupt(), _on_stop(keep_completed):
        for step in range(start_step, cfg.steps):
            lr = learning_rate(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            loss_sum = torch.zeros((), device=device)
            truncated = 0
            for micro in range(cfg.grad_accum):
                batch = next(batches)
                seed = micro_step_seed(cfg.seed, step, rank, micro)
                generator = torch.Generator().manual_seed(seed)  # text dropout, SR inputs
                on_device = torch.Generator(device).manual_seed(seed + 1)  # timesteps, noise
                torch.manual_seed(seed)  # network dropout
                x0 = batch["image"].to(device, non_blocking=True)  # pinned on CUDA
                tokens, cut = conditioning_tokens(
                    batch["text"], tokenizer, config.diffusion.text_dropout, generator
                )
                if want_cuda:  # a pageable copy waits for the GPU's queue; a pinned one not
                    tokens = tokens.pin_memory()
                tokens = tokens.to(device, non_blocking=True)
                truncated += cut
                t = diffusion.sample_timesteps(x0.shape[0], on_device, device)
                noise = torch.randn(x0.shape, generator=on_device, device=device)
                model_inputs = training_inputs(super_resolution, x0, diffusion, generator)
                # Self-conditioning's coin is the same on every rank, so all ranks run the same
                # number of forward passes through DDP (which may sync buffers in each one).
                self_condition = (
                    config.model.self_condition
                    and random.Random(micro_step_seed(cfg.seed, step, 0, micro)).random()
                    < SELF_CONDITION_SHARE
                )
                if preview is None and super_resolution.low_res_size:
                    preview = preview_inputs(super_resolution, batch, len(cfg.sample_prompts))
                last = micro == cfg.grad_accum - 1
                sync = model.no_sync() if distributed and not last else contextlib.nullcontext()
                with sync:
                    with autocast:
                        losses = diffusion.training_losses(
                            model, x0, t, tokens, noise, model_inputs, self_condition
                        )
                        loss = losses["loss"].mean()
                    (loss / cfg.grad_accum).backward()
                loss_sum += loss.detach()
            # A stop signal waits for the update and its log line: weights, optimizer, EMA and
            # metrics.jsonl stay whole steps, which an interrupted run checkpoints.
            with deferred():
                # grad_clip 0 clips nothing; the norm is still read for the log and the NaN check.
                max_norm = cfg.grad_clip or math.inf
                grad_norm = torch.nn.utils.clip_grad_norm_(model_parameters, max_norm)
                # Gradients are all-reduced: a NaN anywhere makes grad_norm NaN on every rank.
                first_bad = _note_nonfinite(
                    first_bad, step + 1, loss_sum / cfg.grad_accum, grad_norm
                )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                with torch.no_grad():
                    decay = ema_decay(step, cfg)
                    # One fused update, not a kernel launch per tensor (~900 for base64 on a GPU).
                    torch._foreach_lerp_(ema_parameters, model_parameters, 1 - decay)
                done = step + 1
                out_of_time = _out_of_time(training_started, cfg.max_minutes, device, distributed)
                last_step = done == cfg.steps or out_of_time
                every = cfg.checkpoint_every  # 0 = only at the last step
                checkpoints = (every and done % every == 0) or last_step
                samples = (
                    is_main and cfg.sample_every and (done % cfg.sample_every == 0 or last_step)
                )
                if checkpoints or samples or done % cfg.log_every == 0:
                    _stop_if_nonfinite(first_bad, checkpoint_path)

                if done % cfg.log_every == 0 or last_step:
                    if distributed:
                        dist.all_reduce(loss_sum)
                    loss_value = loss_sum.item() / (cfg.grad_accum * world_size)
                    now = time.perf_counter()
                    images = (done - logged_step) * cfg.batch_size * cfg.grad_accum * world_size
                    if is_main:
                        row = {
                            "step": done,
                            "loss": loss_value,
                            "lr": lr,
                            "grad_norm": grad_norm.item(),
                            "images_per_s": images / (now - logged_at),
                        }
                        if truncated:
                            row["truncated_texts"] = truncated
                        with open(metrics_path, "a") as handle:
                            handle.write(json.dumps(row) + "\n")
                    logged_at, logged_step = now, done
                    description = f"loss {loss_value:.4f} lr {lr:.2e}"
                    progress.update(task, description=description)
                progress.update(task, completed=done)
                completed = done

            if checkpoints:
                if is_main:
                    write_checkpoint(done)
                saved = done
                if distributed:
                    dist.barrier()
            if samples:
                prompts, low_res = preview or (list(cfg.sample_prompts), None)
                images = sample(
                    ema,
                    diffusion,
                    prompts,
                    cfg.sample_steps,
                    cfg.sample_guidance,
                    seed=0,
                    low_res=low_res,
                )
                (out / "samples").mkdir(exist_ok=True)
                save_image(image_grid(images), out / "samples" / f"step-{done:06d}.png")
            if out_of_time:
                console.print(f"train.max_minutes={cfg.max_minutes} reached at step {done}")
                break

    if is_main and metrics_path.exists():
        write_loss_plot(metrics_path, out / "loss.png")
    if owns_group:
        dist.destroy_process_group()
    return raw_model
