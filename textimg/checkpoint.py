"""Checkpoints that carry their own config: save atomically, load, rebuild, export.

A checkpoint is one `torch.save` dict:
`{"format", "config", "step", "model", "ema", "optimizer", "data_position"}`. It is written to
`NAME.tmp` and renamed, so a kill at any moment leaves the previous checkpoint intact. Random
state is not stored because the trainer derives every random draw from (seed, step, rank,
micro-step), which the config and `step` already hold.

For sampling and evaluation nothing but the file is needed:

    model, diffusion, config = load_checkpoint("out/checkpoint.pt")   # EMA weights, eval mode
    images = textimg.sampling.sample(model, diffusion, ["hi"], steps=50, guidance=3.0, seed=0)
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch

from textimg.config import RunConfig, from_dict
from textimg.diffusion import GaussianDiffusion
from textimg.errors import TextimgError
from textimg.files import (
    atomic_path,
    check_output_dir,
    check_output_file,
    write_atomic,
    write_text_atomic,
)
from textimg.model import UNet, build_model

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` under a temp name and rename it over `path` (atomic on POSIX)."""
    write_atomic(path, lambda temp: torch.save({"format": FORMAT_VERSION, **state}, temp))


def read_checkpoint(path: Path, mmap: bool = False) -> dict[str, Any]:
    """The raw checkpoint dict, loaded to CPU without unpickling arbitrary code (`mmap`: tensors
    stay on disk until touched, for reading just the config of a large checkpoint)."""
    path = Path(path)
    if not path.is_file():
        raise TextimgError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise TextimgError(f"{path} is empty (0 bytes), not a checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except OSError:
        raise  # permission and disk errors keep their own message
    except Exception:  # torch raises many types for a truncated or foreign file
        # torch's own message advises `weights_only=False`, which would run code from the file
        raise TextimgError(
            f"{path} is not a readable textimg checkpoint (truncated, or not written by "
            "`textimg train`)"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise TextimgError(f"{path} is not a textimg checkpoint (format {FORMAT_VERSION})")
    return state


def read_checkpoint_config(path: Path) -> RunConfig:
    """The config a checkpoint was trained with; its tensors are memory-mapped, not read."""
    return from_dict(read_checkpoint(path, mmap=True)["config"])


def load_checkpoint(
    path: Path, device: str | torch.device = "cpu", weights: str = "ema"
) -> tuple[UNet, GaussianDiffusion, RunConfig]:
    """Rebuild `(model, diffusion, config)` from a checkpoint; `weights` is "ema" or "model"."""
    state = read_checkpoint(path)
    config = from_dict(state["config"])
    model = build_model(config)
    model.load_state_dict(state[weights])
    return model.to(device).eval(), GaussianDiffusion.from_config(config.diffusion), config


def export_checkpoint(path: Path, out: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write the EMA weights as `model.safetensors` and the config as `config.json` in `out`;
    files already there are replaced only with `overwrite`."""
    out = Path(out)
    weights_path = out / "model.safetensors"
    config_path = out / "config.json"
    check_output_dir(out)
    for target in (weights_path, config_path):
        check_output_file(target, overwrite)
    state = read_checkpoint(path)
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(state["ema"], weights_path, metadata={"step": str(state["step"])})
    write_text_atomic(config_path, json.dumps(state["config"], indent=2) + "\n")
    return weights_path, config_path


_SAFETENSORS_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
}


def write_safetensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]
) -> None:
    """The safetensors format (8-byte header size, JSON header, raw little-endian data).

    Written here because it is a page of code, and so export needs no extra dependency; the
    result loads with `safetensors.torch.load_file`.
    """
    header: dict[str, Any] = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, tensor in sorted(tensors.items()):
        if tensor.dtype not in _SAFETENSORS_DTYPES:
            raise TextimgError(f"cannot export tensor {name} of type {tensor.dtype}")
        data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data must start 8-byte aligned
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for blob in blobs:
            handle.write(blob)
