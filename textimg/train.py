"""The trainer: one linear `train(config, out)` in plain PyTorch, read top to bottom.

Single process by default; under `torchrun` (which sets `RANK`) it runs DDP, NCCL on GPUs and gloo
on CPUs. Every random draw of a micro-step (timesteps, noise, text dropout, network dropout) comes
from a seed derived from (seed, step, rank, micro-step), and the data stream is a pure function
of the seed and the number of batches consumed, so `--resume` continues exactly: on CPU the
losses after resuming equal those of an uninterrupted run. Ctrl-C or SIGTERM stops after the
update in flight and checkpoints that step; the same command, run again, continues a run whose
saved config it matches.

`train` reads as the loop it is; its pieces have names: `_start_process` (device, DDP),
`textimg.run_dir.open_run_dir` (fresh or resumed), `_build_trainee` (model, EMA, optimizer, warm
start), `_open_batches` (the data stream at its position), `_accumulate` and `_update` (one
optimizer step), `_log`, `_save` and `_write_samples` (what a step leaves on disk). It prints
nothing: what a caller shows goes out through a `TrainReport` (the `train` command draws the
progress bar and the summary).

Files in `out` (`textimg.run_dir`): `config.json`, `checkpoint.pt` (latest, atomic),
`metrics.jsonl` (one line per logged step), `samples/step-NNNNNN.png` (a grid of fixed prompts; a
super-resolution run upsamples its first batch's low-res images instead) and `loss.png` at the end.

A super-resolution run (`super_resolution.low_res_size` set) degrades each high-res batch on the
fly (`textimg.super_resolution`); `--init-from` a base checkpoint warm-starts it as the post's
sandwich (`textimg.warm_start`), and `--init-from` a super-resolution checkpoint fine-tunes it.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from textimg.checkpoint import CHECKPOINT_NAME, read_checkpoint, save_checkpoint
from textimg.config import RunConfig, RuntimeConfig, TrainConfig, from_dict, to_dict
from textimg.data.reader import ShardStream, make_loader
from textimg.diffusion import GaussianDiffusion
from textimg.distributed import Placement, resolve_device, start_process_group, wants_cuda
from textimg.errors import TextimgError
from textimg.images import image_grid, save_image
from textimg.interrupt import Interrupted, deferred, signals_interrupt
from textimg.model import CharTokenizer, build_model
from textimg.optimizer import ema_decay, learning_rate, parameter_groups
from textimg.run_dir import METRICS_NAME, append_metrics, open_run_dir, write_loss_plot
from textimg.sampling import sample
from textimg.super_resolution import preview_inputs, training_inputs
from textimg.warm_start import outer_parameter_names, warm_start

SELF_CONDITION_SHARE = 0.5
"""Share of a self-conditioned model's training steps that feed it a draft x0 (Chen et al.)."""


def uses_channels_last(cfg: RuntimeConfig, cuda: bool) -> bool:
    """Whether the run keeps its convolution weights channels-last (`runtime.memory_format`:
    auto = on the CPU)."""
    return cfg.memory_format == "channels_last" or (cfg.memory_format == "auto" and not cuda)


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """The training step's autocast: bf16 on CUDA (weights, AdamW and EMA stay fp32), none on the
    CPU, where bf16 trained no faster (0.94-1.00x, docs/training.md)."""
    if device.type == "cuda":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def uses_compile(cfg: RuntimeConfig, cuda: bool) -> bool:
    """Whether the run trains a `torch.compile`d model (`runtime.compile`: auto = on CUDA)."""
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


@contextlib.contextmanager
def _on_stop(keep: Callable[[], str]) -> Iterator[None]:
    """Turn Ctrl-C or SIGTERM inside the block into `Interrupted`, after `keep()` recorded the
    work done; its return value is the line the CLI prints."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(keep()) from None


def _quiet(*_: Any) -> None:
    """A `TrainReport` hook that says nothing."""


@dataclass(frozen=True)
class RunStart:
    """What a run knows only once it is built: the step it starts at and where it runs."""

    parameters: int
    start_step: int
    device: str
    processes: int


@dataclass(frozen=True)
class TrainReport:
    """What `train` tells its caller, on rank 0 only; every hook says nothing unless given.

    `started(start)`: once, before the first step (`RunStart`: what the summary needs).
    `stepped(done, description)`: after each optimizer step; `description` is "loss .. lr .."
    at steps that log, else None. `note(line)`: a warm start, a changed data order, a spent
    time budget.
    """

    started: Callable[[RunStart], None] = _quiet
    stepped: Callable[[int, str | None], None] = _quiet
    note: Callable[[str], None] = _quiet


@dataclass(frozen=True)
class Process:
    """Where this process trains: its torchrun place and device, and whether it started the
    process group (then it also ends it)."""

    place: Placement
    device: torch.device
    cuda: bool
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.place.rank == 0


def _start_process(runtime: RuntimeConfig) -> Process:
    """Join DDP exactly when torchrun says so, and pick this rank's device."""
    place = Placement.from_environment()
    cuda = wants_cuda(runtime.device)
    owns_group = start_process_group(place, cuda)
    device = resolve_device(runtime.device, place)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return Process(place, device, cuda, owns_group)


@dataclass
class Trainee:
    """The weights a run trains and what updates them. `raw` is the model as built (what is
    checkpointed and returned); `network` is what the step calls: `raw`, compiled and/or
    wrapped for DDP."""

    raw: nn.Module
    network: nn.Module
    ema: nn.Module
    optimizer: torch.optim.Optimizer
    start_step: int
    parameters: list[nn.Parameter] = field(init=False)
    ema_parameters: list[nn.Parameter] = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = list(self.raw.parameters())
        self.ema_parameters = list(self.ema.parameters())


def _start_from(model: nn.Module, config: RunConfig, init_from: Path, note: Callable) -> None:
    """`--init-from`: a base checkpoint into a super-resolution model warm-starts it as the
    post's sandwich; any other checkpoint's EMA weights must fit the model as they are."""
    source = read_checkpoint(init_from)
    source_config = from_dict(source["config"])
    if config.super_resolution.low_res_size and not source_config.super_resolution.low_res_size:
        note(warm_start(model, config, source["ema"], source_config.model).summary())
        return
    try:
        model.load_state_dict(source["ema"])
    except RuntimeError as error:
        raise TextimgError(f"--init-from {init_from} does not fit this model: {error}") from None


def _build_trainee(
    config: RunConfig,
    process: Process,
    state: dict[str, Any] | None,
    init_from: Path | None,
    note: Callable[[str], None],
) -> Trainee:
    """Model, EMA and optimizer: the same init on every rank (DDP also broadcasts rank 0's
    weights), warm-started or fine-tuned from `init_from`, or restored from `state`."""
    cfg, runtime, super_resolution = config.train, config.runtime, config.super_resolution
    torch.manual_seed(cfg.seed)
    model = build_model(config).to(process.device)
    if uses_channels_last(runtime, process.cuda):
        model = model.to(memory_format=torch.channels_last)
    if init_from is not None and state is None:
        _start_from(model, config, init_from, note)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    outer = frozenset()
    if super_resolution.low_res_size and super_resolution.outer_lr_scale != 1.0:
        outer = frozenset(outer_parameter_names(config, model))
    optimizer = torch.optim.AdamW(
        parameter_groups(model, cfg.weight_decay, outer, super_resolution.outer_lr_scale),
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        fused=runtime.fused_optimizer,
    )
    start_step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        start_step = state["step"]
    network = torch.compile(model) if uses_compile(runtime, process.cuda) else model
    if process.place.distributed:
        ids = [process.place.local_rank] if process.cuda else None
        network = DistributedDataParallel(network, device_ids=ids)
    return Trainee(model, network, ema, optimizer, start_step)


def _data_position(config: RunConfig, step: int, world_size: int) -> dict[str, int]:
    """Where the data stream stands after `step` optimizer steps; the checkpoint holds it."""
    return {
        "batches": step * config.train.grad_accum,
        "world_size": world_size,
        "workers": config.data.num_workers,
    }


def _open_batches(
    config: RunConfig,
    process: Process,
    start_step: int,
    state: dict[str, Any] | None,
    note: Callable[[str], None],
) -> Iterator[dict]:
    """One long-lived iterator over training batches, after the ones already trained on."""
    place = process.place
    position = _data_position(config, start_step, place.world_size)
    if state is not None and state["data_position"] != position:
        note(
            f"note: data position was {state['data_position']}, now {position}: "
            "the data order differs from an uninterrupted run"
        )
    stream = ShardStream(
        config.data,
        config.model.image_size,
        config.model.image_channels,
        config.train.batch_size,
        config.train.seed,
        place.rank,
        place.world_size,
        start_batch=position["batches"],
    )
    return iter(make_loader(stream, pin_memory=process.cuda))


@dataclass(frozen=True)
class Run:
    """What every step of one run reads: its settings, directory, process and diffusion."""

    config: RunConfig
    out: Path
    process: Process
    diffusion: GaussianDiffusion
    tokenizer: CharTokenizer

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT_NAME

    @property
    def metrics_path(self) -> Path:
        return self.out / METRICS_NAME


@dataclass
class Ledger:
    """What the loop has done, read when it logs, checkpoints, samples or stops.

    No step reads a value back from the device, so the host queues the next step while the GPU
    runs this one: `first_bad` (see `_note_nonfinite`) stays on the device and is read at the
    steps that log, checkpoint or sample, and images/s is timed over the steps since the last
    log. `preview` holds a super-resolution run's grid inputs, the first batch's low-res images.
    """

    completed: int  # the last step whose update finished
    saved: int  # the checkpoint's step
    logged_step: int
    logged_at: float
    first_bad: torch.Tensor
    preview: tuple[list[str], np.ndarray] | None = None


def _set_learning_rate(optimizer: torch.optim.Optimizer, step: int, cfg: TrainConfig) -> float:
    """The scheduled lr of `step`, scaled per group by its `lr_scale` (a sandwich's bread)."""
    lr = learning_rate(step, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    return lr


def _micro_step(
    run: Run, network: nn.Module, step: int, micro: int, batch: dict
) -> tuple[torch.Tensor, int]:
    """Forward and backward on one batch, its gradient scaled for accumulation; returns the
    loss (detached) and how many texts were truncated. Every draw is seeded by (seed, step,
    rank, micro), so a resumed run repeats it exactly."""
    config, place, device = run.config, run.process.place, run.process.device
    cfg = config.train
    seed = micro_step_seed(cfg.seed, step, place.rank, micro)
    generator = torch.Generator().manual_seed(seed)  # text dropout, SR inputs
    on_device = torch.Generator(device).manual_seed(seed + 1)  # timesteps, noise
    torch.manual_seed(seed)  # network dropout
    x0 = batch["image"].to(device, non_blocking=True)  # pinned on CUDA
    tokens, truncated = conditioning_tokens(
        batch["text"], run.tokenizer, config.diffusion.text_dropout, generator
    )
    if run.process.cuda:  # a pageable copy waits for the GPU's queue; a pinned one not
        tokens = tokens.pin_memory()
    tokens = tokens.to(device, non_blocking=True)
    t = run.diffusion.sample_timesteps(x0.shape[0], on_device, device)
    noise = torch.randn(x0.shape, generator=on_device, device=device)
    model_inputs = training_inputs(config.super_resolution, x0, run.diffusion, generator)
    # Self-conditioning's coin is the same on every rank, so all ranks run the same number of
    # forward passes through DDP (which may sync buffers in each one).
    self_condition = (
        config.model.self_condition
        and random.Random(micro_step_seed(cfg.seed, step, 0, micro)).random() < SELF_CONDITION_SHARE
    )
    last = micro == cfg.grad_accum - 1
    sync = network.no_sync() if place.distributed and not last else contextlib.nullcontext()
    with sync:
        with autocast_for(device):
            losses = run.diffusion.training_losses(
                network, x0, t, tokens, noise, model_inputs, self_condition
            )
            loss = losses["loss"].mean()
        (loss / cfg.grad_accum).backward()
    return loss.detach(), truncated


def _accumulate(
    run: Run, trainee: Trainee, step: int, batches: Iterator[dict]
) -> tuple[torch.Tensor, int, dict]:
    """The micro-steps of one optimizer step: the summed loss (on the device), the truncated
    texts and the first batch."""
    loss_sum = torch.zeros((), device=run.process.device)
    truncated, first = 0, None
    for micro in range(run.config.train.grad_accum):
        batch = next(batches)
        first = first or batch
        loss, cut = _micro_step(run, trainee.network, step, micro, batch)
        loss_sum += loss
        truncated += cut
    return loss_sum, truncated, first


def _update(
    run: Run, trainee: Trainee, ledger: Ledger, step: int, loss_sum: torch.Tensor
) -> torch.Tensor:
    """Clip, note a non-finite loss or norm, step AdamW, then the EMA; the gradient norm."""
    cfg = run.config.train
    # grad_clip 0 clips nothing; the norm is still read for the log and the NaN check.
    grad_norm = torch.nn.utils.clip_grad_norm_(trainee.parameters, cfg.grad_clip or math.inf)
    # Gradients are all-reduced: a NaN anywhere makes grad_norm NaN on every rank.
    ledger.first_bad = _note_nonfinite(
        ledger.first_bad, step + 1, loss_sum / cfg.grad_accum, grad_norm
    )
    trainee.optimizer.step()
    trainee.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        # One fused update, not a kernel launch per tensor (~900 for base64 on a GPU).
        weight = 1 - ema_decay(step, cfg)
        torch._foreach_lerp_(trainee.ema_parameters, trainee.parameters, weight)
    return grad_norm


def _log(
    run: Run,
    ledger: Ledger,
    done: int,
    lr: float,
    loss_sum: torch.Tensor,
    grad_norm: torch.Tensor,
    truncated: int,
) -> str:
    """Append step `done`'s line to metrics.jsonl (rank 0; the loss averaged over the ranks)
    and return the progress bar's description of it."""
    cfg, world_size = run.config.train, run.process.place.world_size
    if run.process.place.distributed:
        dist.all_reduce(loss_sum)
    loss_value = loss_sum.item() / (cfg.grad_accum * world_size)
    now = time.perf_counter()
    images = (done - ledger.logged_step) * cfg.batch_size * cfg.grad_accum * world_size
    if run.process.is_main:
        row = {
            "step": done,
            "loss": loss_value,
            "lr": lr,
            "grad_norm": grad_norm.item(),
            "images_per_s": images / (now - ledger.logged_at),
        }
        if truncated:
            row["truncated_texts"] = truncated
        append_metrics(run.metrics_path, row)
    ledger.logged_at, ledger.logged_step = now, done
    return f"loss {loss_value:.4f} lr {lr:.2e}"


def _save(run: Run, trainee: Trainee, step: int) -> None:
    """Checkpoint the raw weights, EMA and optimizer after `step`, with the data position."""
    position = _data_position(run.config, step, run.process.place.world_size)
    save_checkpoint(
        run.checkpoint_path,
        {
            "config": to_dict(run.config),
            "step": step,
            "model": trainee.raw.state_dict(),
            "ema": trainee.ema.state_dict(),
            "optimizer": trainee.optimizer.state_dict(),
            "data_position": position,
        },
    )


def _write_samples(run: Run, ema: nn.Module, ledger: Ledger, done: int) -> None:
    """`samples/step-NNNNNN.png`: the EMA model's grid of the fixed prompts (or, for a
    super-resolution run, of the first batch's low-res images), seed 0 every time."""
    cfg = run.config.train
    prompts, low_res = ledger.preview or (list(cfg.sample_prompts), None)
    images = sample(
        ema, run.diffusion, prompts, cfg.sample_steps, cfg.sample_guidance, seed=0, low_res=low_res
    )
    (run.out / "samples").mkdir(exist_ok=True)
    save_image(image_grid(images), run.out / "samples" / f"step-{done:06d}.png")


def train(
    config: RunConfig,
    out: Path,
    resume: bool = False,
    init_from: Path | None = None,
    report: TrainReport | None = None,
    overwrite: bool = False,
) -> nn.Module:
    """Train until `config.train.steps`; returns the trained (raw, non-EMA) model. A directory
    holding another run's files is replaced only with `overwrite` (`open_run_dir`)."""
    cfg, out = config.train, Path(out)
    process = _start_process(config.runtime)
    report = report if report is not None and process.is_main else TrainReport()
    state = open_run_dir(config, out, resume, process.is_main, overwrite)
    trainee = _build_trainee(config, process, state, init_from, report.note)
    start = trainee.start_step
    parameters = sum(p.numel() for p in trainee.parameters)
    report.started(RunStart(parameters, start, str(process.device), process.place.world_size))
    batches = _open_batches(config, process, start, state, report.note)
    diffusion = GaussianDiffusion.from_config(config.diffusion)
    run = Run(config, out, process, diffusion, CharTokenizer(config.model.context_length))
    started = time.perf_counter()
    ledger = Ledger(start, start, start, started, torch.zeros(2, device=process.device))

    def keep_completed() -> str:
        """On Ctrl-C or SIGTERM: checkpoint the last whole step, say what was kept."""
        if ledger.completed == 0:
            return "stopped before the first step finished; nothing to keep"
        _stop_if_nonfinite(ledger.first_bad, run.checkpoint_path)
        if process.is_main and ledger.completed > ledger.saved:
            _save(run, trainee, ledger.completed)
        return (
            f"{run.checkpoint_path} holds step {ledger.completed} of {cfg.steps}; "
            "the same command resumes"
        )

    with signals_interrupt(), _on_stop(keep_completed):
        for step in range(start, cfg.steps):
            lr = _set_learning_rate(trainee.optimizer, step, cfg)
            loss_sum, truncated, first_batch = _accumulate(run, trainee, step, batches)
            if ledger.preview is None and config.super_resolution.low_res_size:
                count = len(cfg.sample_prompts)
                ledger.preview = preview_inputs(config.super_resolution, first_batch, count)
            # A stop signal waits for the update and its log line: weights, optimizer, EMA and
            # metrics.jsonl stay whole steps, which an interrupted run checkpoints.
            with deferred():
                grad_norm = _update(run, trainee, ledger, step, loss_sum)
                done = step + 1
                distributed = process.place.distributed
                out_of_time = _out_of_time(started, cfg.max_minutes, process.device, distributed)
                last_step = done == cfg.steps or out_of_time
                every = cfg.checkpoint_every  # 0 = only at the last step
                checkpoints = (every and done % every == 0) or last_step
                samples = (
                    process.is_main
                    and cfg.sample_every
                    and (done % cfg.sample_every == 0 or last_step)
                )
                logs = done % cfg.log_every == 0
                if checkpoints or samples or logs:
                    _stop_if_nonfinite(ledger.first_bad, run.checkpoint_path)
                description = None
                if logs or last_step:
                    description = _log(run, ledger, done, lr, loss_sum, grad_norm, truncated)
                report.stepped(done, description)
                ledger.completed = done
            if checkpoints:
                if process.is_main:
                    _save(run, trainee, done)
                ledger.saved = done
                if distributed:
                    dist.barrier()
            if samples:
                _write_samples(run, trainee.ema, ledger, done)
            if out_of_time:
                report.note(f"train.max_minutes={cfg.max_minutes} reached at step {done}")
                break

    if process.is_main and run.metrics_path.exists():
        write_loss_plot(run.metrics_path, out / "loss.png")
    if process.owns_group:
        dist.destroy_process_group()
    return trainee.raw
