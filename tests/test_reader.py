"""Reader: decoding, determinism, mixing, worker/rank splitting and exact resume."""

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from textimg.config import DataConfig
from textimg.data.reader import ShardStream, decode_image, make_loader
from textimg.data.shards import shard_name, write_shard
from textimg.errors import TextimgError


def text_image(text: str, size: int = 48, mode: str = "L", width: int | None = None) -> Image.Image:
    """A light page with dark `text`, like the synthetic corpus."""
    image = Image.new(mode, (width or size, size), 230 if mode == "L" else (230, 220, 200))
    ImageDraw.Draw(image).text((4, size // 3), text, fill=20 if mode == "L" else (10, 10, 60))
    return image


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def make_shards(
    directory: Path, prefix: str, shards: int, per_shard: int, texts: list[str] | None = None
) -> Path:
    """`shards` tars of `per_shard` grayscale text images; keys say source, shard and index."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = texts or ["ab", "cd", "xyz", "Hi", ""]
    for shard in range(shards):
        samples = []
        for index in range(per_shard):
            text = texts[(shard * per_shard + index) % len(texts)]
            key = f"{prefix}{shard:02d}{index:04d}"
            samples.append(
                (key, {"png": encoded(text_image(text)), "txt": text.encode(), "json": b"{}"})
            )
        write_shard(directory / shard_name(prefix, shard), samples)
    return directory


def keys(stream: ShardStream, batches: int) -> list[str]:
    iterator = iter(stream)
    return [key for _ in range(batches) for key in next(iterator)["key"]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    make_shards(root / "synth", "synth", shards=4, per_shard=10)
    make_shards(root / "real", "train", shards=2, per_shard=10)
    make_shards(root / "real", "test", shards=1, per_shard=5)
    return root


def test_decode_resizes_crops_and_converts() -> None:
    wide = text_image("hello", size=40, mode="L", width=100)
    for fmt in ("PNG", "JPEG", "WEBP", "GIF"):
        gray = decode_image(encoded(wide, fmt), size=16, channels=1)
        rgb = decode_image(encoded(wide, fmt), size=16, channels=3)
        assert gray.shape == (1, 16, 16) and rgb.shape == (3, 16, 16)
        assert gray.min() >= -1 and gray.max() <= 1
        torch.testing.assert_close(rgb[0], rgb[2])  # grayscale data feeds an RGB model
    color = decode_image(encoded(text_image("a", mode="RGB")), size=16, channels=3)
    assert not torch.allclose(color[0], color[2])


def test_antialiased_downscale_keeps_mean_of_fine_pattern() -> None:
    stripes = np.zeros((64, 64), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes alias to black or white without antialiasing
    small = decode_image(encoded(Image.fromarray(stripes)), size=8, channels=1)
    assert small.mean().abs() < 0.1 and small.std() < 0.1


def test_same_seed_same_order_and_test_shards_held_out(corpus: Path) -> None:
    config = DataConfig(shards=(str(corpus / "synth"), str(corpus / "real")), shuffle_buffer=8)
    first = keys(ShardStream(config, 16, 1, 4, seed=3), 10)
    assert first == keys(ShardStream(config, 16, 1, 4, seed=3), 10)
    assert first != keys(ShardStream(config, 16, 1, 4, seed=4), 10)
    assert not any(
        key.startswith("test") for key in keys(ShardStream(config, 16, 1, 8, seed=0), 20)
    )


def test_mixing_weights(corpus: Path) -> None:
    config = DataConfig(
        shards=(str(corpus / "synth"), str(corpus / "real")), weights=(0.3, 0.7), shuffle_buffer=4
    )
    stream = ShardStream(config, 16, 1, 1, seed=0)
    drawn = [key for key, _ in itertools.islice(stream.raw_samples(0, 1), 2000)]
    synthetic = sum(key.startswith("synth") for key in drawn) / len(drawn)
    assert 0.25 < synthetic < 0.35


@pytest.mark.parametrize("shards", [4, 1])
def test_ranks_and_workers_read_disjoint_samples(tmp_path: Path, shards: int) -> None:
    make_shards(tmp_path, "synth", shards=shards, per_shard=40 // shards)
    config = DataConfig(shards=(str(tmp_path),), shuffle_buffer=1)
    seen = []
    for rank in range(2):
        stream = ShardStream(config, 16, 1, 1, seed=0, rank=rank, world_size=2)
        for worker in range(2):
            seen.append([key for key, _ in itertools.islice(stream.raw_samples(worker, 2), 10)])
    flat = [key for part in seen for key in part]
    assert len(set(flat)) == 40  # one pass: every sample exactly once across the 4 slots


def test_resume_from_a_batch_position_with_workers(corpus: Path) -> None:
    config = DataConfig(
        shards=(str(corpus / "synth"), str(corpus / "real")), num_workers=2, shuffle_buffer=8
    )
    full = iter(make_loader(ShardStream(config, 16, 1, batch_size=3, seed=1)))
    expected = [next(full)["key"] for _ in range(7)]
    resumed = iter(make_loader(ShardStream(config, 16, 1, batch_size=3, seed=1, start_batch=4)))
    assert [next(resumed)["key"] for _ in range(3)] == expected[4:]


def test_bad_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TextimgError, match="no training data"):
        ShardStream(DataConfig(), 16, 1, 1, seed=0)
    with pytest.raises(TextimgError, match="no shards"):
        ShardStream(DataConfig(shards=(str(tmp_path / "missing"),)), 16, 1, 1, seed=0)
    make_shards(tmp_path / "a", "synth", 1, 2)
    with pytest.raises(TextimgError, match="weights"):
        ShardStream(DataConfig(shards=(str(tmp_path / "a"),), weights=(1.0, 2.0)), 16, 1, 1, seed=0)


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_wide_grayscale_images_keep_their_tones(mode: str) -> None:
    """16-bit, 32-bit and float grayscale scans decode to their gray levels, not to white."""
    ramp = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    scale = {"I;16": 65535, "I": 65535, "F": 1.0}[mode]
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    image = Image.fromarray((ramp * scale).astype(dtype))
    assert image.mode == mode
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if mode == "I;16" else "TIFF")
    decoded = decode_image(buffer.getvalue(), size=64, channels=1)
    expected = torch.from_numpy(ramp.astype(np.float32) * 2 - 1)
    assert torch.allclose(decoded[0], expected, atol=2 / 255)
