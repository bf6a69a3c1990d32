"""Small building blocks shared by the text encoder, the U-Net and the weave attention."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(
    timesteps: torch.Tensor, dim: int, max_period: float = 10000.0
) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, as in improved-diffusion."""
    half = dim // 2
    frequencies = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=timesteps.device)
        / half
    )
    angles = timesteps.float()[:, None] * frequencies[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


def autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The autocast dtype on `x`'s device, or None when autocast is off (or the device, such as
    `meta`, has none)."""
    device = x.device.type
    if torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return None


NormFunction = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor]


def _cast(parameter: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if parameter is None else parameter.to(dtype)


def _norm_in_autocast_dtype(norm: nn.Module, x: torch.Tensor, apply: NormFunction) -> torch.Tensor:
    """`apply(x, weight, bias)` with input and affine parameters in the autocast dtype and
    autocast off around it (it would cast them back up to fp32); as given when autocast is off."""
    dtype = autocast_dtype(x)
    if dtype is None:
        return apply(x, norm.weight, norm.bias)
    with torch.autocast(x.device.type, enabled=False):
        return apply(x.to(dtype), _cast(norm.weight, dtype), _cast(norm.bias, dtype))


class GroupNorm(nn.GroupNorm):
    """`nn.GroupNorm` (same parameters) that runs in the autocast dtype.

    CUDA autocast runs GroupNorm and LayerNorm in fp32: every norm casts its bf16 input up and
    its output down again, and the fp32 copy doubles the memory saved for backward. The norm
    kernels accumulate their statistics in fp32 whatever the input dtype, so a bf16 input loses
    nothing there; only the output is rounded, as the next conv or linear would round it anyway
    (`benchmarks/train.py --parity`: the same loss as fp32 training).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _norm_in_autocast_dtype(
            self, x, lambda x, w, b: F.group_norm(x, self.num_groups, w, b, self.eps)
        )


class LayerNorm(nn.LayerNorm):
    """`nn.LayerNorm` (same parameters) that runs in the autocast dtype, as `GroupNorm`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _norm_in_autocast_dtype(
            self, x, lambda x, w, b: F.layer_norm(x, self.normalized_shape, w, b, self.eps)
        )


def group_norm(channels: int, groups: int) -> GroupNorm:
    """GroupNorm with the largest group count <= `groups` that divides `channels`."""
    return GroupNorm(math.gcd(channels, groups), channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters so a residual branch starts as the identity (ADM)."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


@dataclass
class Conditioning:
    """What every U-Net layer may read besides the image features.

    emb: the U-Net timestep embedding (B, E). text: encoder output (B, L, D). text_mask: True for
    real tokens (B, L). positions: the axial position embedding of each resolution, keyed by the
    feature map's side, shared by all weave layers at that resolution.
    """

    emb: torch.Tensor
    text: torch.Tensor
    text_mask: torch.Tensor
    positions: dict[int, torch.Tensor]


def attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    heads: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Multi-head attention on (B, N, heads*d) inputs through `F.scaled_dot_product_attention`.

    `mask` is a boolean (B, M) key mask (True = attend) or an additive float bias broadcastable
    to (B, heads, N, M). The callers guarantee every query sees at least one key, so no softmax
    row is empty (SDPA returns NaN for fully masked rows, pytorch#103963). They also pass
    inputs whose channels are contiguous (stride 1 in the last dimension): the fused CUDA
    kernels (flash, memory-efficient) refuse any other layout and SDPA falls back to the math
    path, which stores the whole score matrix.
    """
    batch, n, _ = query.shape

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, x.shape[1], heads, -1).transpose(1, 2)

    if mask is not None:
        # A boolean key mask broadcasts over heads and queries; a float bias must match the
        # query dtype, which is bf16 under autocast.
        mask = mask[:, None, None, :] if mask.dtype == torch.bool else mask.to(query.dtype)
    out = F.scaled_dot_product_attention(split(query), split(key), split(value), attn_mask=mask)
    return out.transpose(1, 2).reshape(batch, n, -1)


class FeedForward(nn.Module):
    """Pre-norm transformer feed-forward with GELU; the caller adds the residual."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            LayerNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
