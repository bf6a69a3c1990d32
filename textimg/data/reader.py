"""The trainer's data stream: endless, mixed, deterministic batches from WebDataset shards.

    stream = ShardStream(data_config, image_size=32, image_channels=1, batch_size=64, seed=0)
    loader = make_loader(stream)
    batch = next(iter(loader))   # {"image": (B, C, S, S) float in [-1, 1], "text": [str] * B}

Sources (a directory of shards, one tar, or a glob) are mixed by weight, e.g. synthetic 0.3 and
real 0.7. Each DataLoader worker of each DDP rank is one "slot": with at least as many shards as
slots, a slot reads its own shards (shard order reshuffled every pass with a seed shared by all
slots, so no shard is duplicated or skipped); with fewer, every slot reads all shards and keeps
every `slots`-th sample. Samples then go through a seeded shuffle buffer and a seeded source
choice. Seeds are built from integers and strings only (no `hash()`), so the order is a pure
function of (seed, rank, world size, workers, batch size).

Workers build whole batches and the DataLoader takes them round-robin, so after the trainer has
consumed `n` batches, worker `w` has produced exactly `ceil((n - w) / workers)` of them. Resuming
rebuilds the stream and skips that many raw samples per worker before decoding anything: the
data position is the single integer `n` (`start_batch`).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from textimg.config import DataConfig
from textimg.data.shards import find_shards, image_member, iter_shard, open_member_image
from textimg.errors import TextimgError

RawSample = tuple[str, dict[str, bytes]]


def source_shards(source: str) -> list[Path]:
    """Shards of one source; a directory's `test-*` shards are held out, never trained on."""
    shards = find_shards(source)
    if Path(source).is_dir():
        shards = [shard for shard in shards if not shard.name.startswith("test-")]
        if not shards:
            raise TextimgError(f"{source} holds only test shards")
    return shards


def decode_image(data: bytes, size: int, channels: int) -> torch.Tensor:
    """Image bytes to (channels, size, size) in [-1, 1]: shortest side to `size`, center crop.

    Pillow's bicubic resize is antialiased (its kernel widens with the scale factor). Grayscale
    images become RGB by repetition, so synthetic data can train an RGB model; transparent images
    are laid on white, the usual page colour of text.
    """
    image = open_member_image(data).convert("RGBA")
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    image = Image.alpha_composite(background, image).convert("RGB" if channels == 3 else "L")
    width, height = image.size
    scale = size / min(width, height)
    resized = (max(size, round(width * scale)), max(size, round(height * scale)))
    image = image.resize(resized, Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (resized[0] - size) // 2, (resized[1] - size) // 2
    image = image.crop((left, top, left + size, top + size))
    array = np.asarray(image, dtype=np.float32).reshape(size, size, channels)
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1


def _usable(sample: RawSample) -> bool:
    return image_member(sample[1]) is not None and "txt" in sample[1]


def _slot_samples(
    shards: list[Path], seed: int, source: int, slot: int, slots: int
) -> Iterator[RawSample]:
    """Endless raw samples of one source for one slot, pass after pass over the shards."""
    for epoch in itertools.count():
        order = list(shards)
        random.Random(f"shards-{seed}-{source}-{epoch}").shuffle(order)
        if len(order) >= slots:
            samples = itertools.chain.from_iterable(iter_shard(s) for s in order[slot::slots])
        else:
            every = itertools.chain.from_iterable(iter_shard(s) for s in order)
            samples = itertools.islice(every, slot, None, slots)
        produced = 0
        for sample in samples:
            if _usable(sample):
                produced += 1
                yield sample
        if not produced:
            raise TextimgError(
                f"no usable samples (image + .txt) for reader slot {slot} in {shards[0].parent}"
            )


def _shuffled(samples: Iterator[RawSample], size: int, rng: random.Random) -> Iterator[RawSample]:
    """Reservoir-style shuffle buffer: yield a random held sample, replace it with the next."""
    buffer = list(itertools.islice(samples, size))
    for sample in samples:
        index = rng.randrange(len(buffer))
        yield buffer[index]
        buffer[index] = sample


class ShardStream(IterableDataset):
    """Endless batches `{"image", "text", "key"}` for one DDP rank; see the module docstring."""

    def __init__(
        self,
        config: DataConfig,
        image_size: int,
        image_channels: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start_batch: int = 0,
    ) -> None:
        if not config.shards:
            raise TextimgError(
                "no training data: pass --data DIR (shards written by textimg synth or pack)"
            )
        weights = config.weights or tuple(1.0 for _ in config.shards)
        if len(weights) != len(config.shards):
            raise TextimgError(f"{len(config.shards)} data sources but {len(weights)} weights")
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise TextimgError("data weights must be >= 0 and not all zero")
        self.sources = [source_shards(source) for source in config.shards]
        self.weights = weights
        self.shuffle_buffer = config.shuffle_buffer
        self.num_workers = config.num_workers
        self.image_size = image_size
        self.image_channels = image_channels
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_batch = start_batch

    def raw_samples(self, worker: int, workers: int) -> Iterator[RawSample]:
        """The undecoded, mixed, shuffled sample stream of one worker of this rank."""
        slot, slots = self.rank * workers + worker, self.world_size * workers
        streams = [
            _shuffled(
                _slot_samples(shards, self.seed, index, slot, slots),
                self.shuffle_buffer,
                random.Random(f"buffer-{self.seed}-{index}-{slot}"),
            )
            for index, shards in enumerate(self.sources)
        ]
        choose = random.Random(f"mix-{self.seed}-{slot}")
        indices = range(len(streams))
        while True:
            (index,) = choose.choices(indices, weights=self.weights)
            yield next(streams[index])

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        done = max(0, math.ceil((self.start_batch - worker) / workers))
        samples = itertools.islice(self.raw_samples(worker, workers), done * self.batch_size, None)
        while True:
            chunk = list(itertools.islice(samples, self.batch_size))
            images = []
            for key, members in chunk:
                try:
                    images.append(
                        decode_image(image_member(members)[1], self.image_size, self.image_channels)
                    )
                except ValueError as error:
                    folders = ", ".join(sorted({str(s[0].parent) for s in self.sources}))
                    raise TextimgError(
                        f"sample {key} in the shards of {folders}: {error}; remove it from its "
                        "shard (or re-pack the source) and resume"
                    ) from None
            yield {
                "image": torch.stack(images),
                "text": [members["txt"].decode("utf-8", errors="replace") for _, members in chunk],
                "key": [key for key, _ in chunk],
            }


def make_loader(stream: ShardStream, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over `stream` with its config's workers; iterate it once, for the whole run
    (it never ends).

    `pin_memory` (for CUDA) hands out batches in page-locked memory, so their copy to the GPU is
    asynchronous instead of waiting for the GPU to finish its queued work.
    """
    workers = stream.num_workers
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None,
        pin_memory=pin_memory,
    )
