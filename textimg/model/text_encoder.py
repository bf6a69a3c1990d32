"""The transcript encoder: a small pre-norm transformer that knows where each character sits.

Position enters three ways, following the post: a learned absolute position, a **line embedding**
(how many newlines came before, so the model knows which line a character is on) and a **T5
relative position bias** in every layer (spelling improved "dramatically" once relative positions
were added). The diffusion timestep is embedded and added to every token too, because different
noise levels need different things from the text.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from textimg.model.layers import FeedForward, LayerNorm, attention, timestep_embedding
from textimg.model.tokenizer import NEWLINE, PAD, VOCAB_SIZE


def relative_position_bucket(
    relative_position: torch.Tensor, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    """T5's bidirectional bucketing of `key - query` distances (Raffel et al. 2020).

    Half the buckets per direction; in each half, distances below a quarter of the buckets get
    their own bucket and larger ones share log-spaced buckets up to `max_distance`.
    """
    half = num_buckets // 2
    bucket = (relative_position > 0).long() * half
    distance = relative_position.abs()
    max_exact = half // 2
    log_ratio = torch.log(distance.float().clamp(min=1) / max_exact) / math.log(
        max_distance / max_exact
    )
    far = max_exact + (log_ratio * (half - max_exact)).long()
    far = far.clamp(max=half - 1)
    return bucket + torch.where(distance < max_exact, distance, far)


class RelativePositionBias(nn.Module):
    """One learned scalar per (bucket, head), shared by all layers and computed once per call."""

    def __init__(self, heads: int, num_buckets: int, max_distance: int) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.embedding = nn.Embedding(num_buckets, heads)

    def forward(self, length: int) -> torch.Tensor:
        """Bias of shape (1, heads, length, length) to add to attention logits."""
        positions = torch.arange(length, device=self.embedding.weight.device)
        buckets = relative_position_bucket(
            positions[None, :] - positions[:, None], self.num_buckets, self.max_distance
        )
        return self.embedding(buckets).permute(2, 0, 1)[None]


class TransformerLayer(nn.Module):
    """Pre-norm self-attention and feed-forward with residuals."""

    def __init__(self, dim: int, heads: int, ff_mult: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff = FeedForward(dim, ff_mult)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        x = x + self.out(attention(q, k, v, self.heads, bias))
        return x + self.ff(x)


class TextEncoder(nn.Module):
    """Encodes token ids (B, L) at diffusion time t (B,) into (B, L, dim) plus a real-token mask."""

    def __init__(
        self,
        dim: int,
        depth: int,
        head_channels: int,
        ff_mult: int,
        context_length: int,
        max_lines: int,
        relative_buckets: int,
        relative_max_distance: int,
    ) -> None:
        super().__init__()
        if dim % head_channels:
            raise ValueError(
                f"text_dim {dim} is not a multiple of text_head_channels {head_channels}"
            )
        heads = dim // head_channels
        self.dim = dim
        self.max_lines = max_lines
        self.token_embedding = nn.Embedding(VOCAB_SIZE, dim)
        self.position_embedding = nn.Embedding(context_length, dim)
        self.line_embedding = nn.Embedding(max_lines, dim)
        self.time_embedding = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim))
        self.relative_bias = RelativePositionBias(heads, relative_buckets, relative_max_distance)
        self.layers = nn.ModuleList(TransformerLayer(dim, heads, ff_mult) for _ in range(depth))
        for table in (self.position_embedding, self.line_embedding):
            nn.init.normal_(table.weight, std=dim**-0.5)
        # The characters must dominate each token's input at the start. With every table at
        # dim^-0.5 and a default-initialised time projection (the same vector on every token of
        # every prompt, and larger), "ABC" and "XYZ" differed in ~8% of the encoder output and a
        # 2,400-step CPU run learned to ignore the text entirely (docs/training.md, "What
        # helped"). Unit token embeddings and a near-zero time projection (it grows as it is
        # needed) make the transcript lower the loss from step ~400 of the same run.
        nn.init.normal_(self.token_embedding.weight, std=1.0)
        nn.init.normal_(self.time_embedding[1].weight, std=0.02)
        nn.init.zeros_(self.time_embedding[1].bias)

    def line_indices(self, tokens: torch.Tensor) -> torch.Tensor:
        """Line number of each token: the running count of newlines, a newline opening its line."""
        return torch.cumsum(tokens == NEWLINE, dim=1).clamp(max=self.max_lines - 1)

    def forward(
        self, tokens: torch.Tensor, timesteps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = tokens != PAD
        length = tokens.shape[1]
        positions = torch.arange(length, device=tokens.device)
        time = self.time_embedding(timestep_embedding(timesteps, self.dim))
        x = (
            self.token_embedding(tokens)
            + self.position_embedding(positions)[None]
            + self.line_embedding(self.line_indices(tokens))
            + time[:, None, :]
        )
        # Padding keys get -inf; the start token is never padding, so no row is fully masked.
        padding = torch.zeros(mask.shape, dtype=x.dtype, device=x.device)
        padding = padding.masked_fill(~mask, float("-inf"))[:, None, None, :]
        bias = self.relative_bias(length).to(x.dtype) + padding
        for layer in self.layers:
            x = layer(x, bias)
        return x, mask
