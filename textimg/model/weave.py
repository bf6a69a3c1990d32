"""Weave attention: the post's text <-> image coupling in the U-Net decoder.

One block = image-to-text cross-attention (text queries read the image), a feed-forward on the
text, then text-to-image cross-attention (image queries read that text). The image side of both
attentions is normalised by AdaGN: a one-group GroupNorm scaled and shifted by the timestep
embedding plus an axial position embedding, so each pixel knows where it is and how noisy the
input is when it asks the text what to write. Score matrices are text_len x H*W, never
(text_len + H*W)^2 as in GLIDE's appended-token attention.

The text changed by image-to-text stays inside the block: each block starts again from the
encoder output (the original's default, `weave_v2=False`).
"""

from __future__ import annotations

import torch
from torch import nn

from textimg.model.layers import Conditioning, FeedForward, GroupNorm, LayerNorm, attention


class AxialPositionEmbedding(nn.Module):
    """Learned row + column tables summed to (1, dim, H, W); one per resolution."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        # Small init: the table is added to AdaGN's scale, so N(0, 1) would start with random
        # sign flips of the normalised features.
        self.rows = nn.Parameter(torch.randn(1, dim, size, 1) * 0.02)
        self.columns = nn.Parameter(torch.randn(1, dim, 1, size) * 0.02)

    def forward(self) -> torch.Tensor:
        return self.rows + self.columns


class AdaGroupNorm(nn.Module):
    """One-group GroupNorm whose scale and shift come from the timestep and the pixel position."""

    def __init__(self, channels: int, emb_channels: int) -> None:
        super().__init__()
        self.norm = GroupNorm(1, channels, affine=False)
        self.projection = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * channels))

    def forward(self, h: torch.Tensor, emb: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Normalised features flattened to tokens (B, H*W, C).

        The modulation takes the norm's dtype (bf16 under autocast): the fp32 position table
        would otherwise promote the whole (B, C, H, W) product to fp32.
        """
        normed = self.norm(h)
        modulation = self.projection(emb)[:, :, None, None] + position
        scale, shift = modulation.to(normed.dtype).chunk(2, dim=1)
        return (normed * (1 + scale) + shift).flatten(2).transpose(1, 2)


class CrossAttention(nn.Module):
    """Queries from one stream, keys/values from another, projected to `inner` channels."""

    def __init__(self, query_dim: int, source_dim: int, inner: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_kv = nn.Linear(source_dim, 2 * inner, bias=False)
        self.out = nn.Linear(inner, query_dim, bias=False)
        # Learnable output gain: the residual branch's strength is a single trained scalar.
        self.gain = nn.Parameter(torch.ones(()))

    def forward(
        self, queries: torch.Tensor, source: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        key, value = self.to_kv(source).chunk(2, dim=-1)
        return self.gain * self.out(attention(self.to_q(queries), key, value, self.heads, mask))


class WeaveAttention(nn.Module):
    """Image->text attention, text feed-forward, text->image attention, residual into the image."""

    def __init__(
        self, channels: int, emb_channels: int, text_dim: int, head_channels: int, ff_mult: int
    ) -> None:
        super().__init__()
        if text_dim % head_channels:
            raise ValueError(f"text_dim {text_dim} is not a multiple of {head_channels}")
        heads = text_dim // head_channels
        self.image_norm_for_text = AdaGroupNorm(channels, emb_channels)
        self.text_norm_read = LayerNorm(text_dim)
        self.image_to_text = CrossAttention(text_dim, channels, text_dim, heads)
        self.text_ff = FeedForward(text_dim, ff_mult)
        self.image_norm_for_image = AdaGroupNorm(channels, emb_channels)
        self.text_norm_write = LayerNorm(text_dim)
        self.text_to_image = CrossAttention(channels, text_dim, text_dim, heads)

    def forward(self, h: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        batch, channels, height, width = h.shape
        position = cond.positions[height]
        image = self.image_norm_for_text(h, cond.emb, position)
        text = cond.text + self.image_to_text(self.text_norm_read(cond.text), image)
        text = text + self.text_ff(text)
        queries = self.image_norm_for_image(h, cond.emb, position)
        update = self.text_to_image(queries, self.text_norm_write(text), cond.text_mask)
        return h + update.transpose(1, 2).reshape(batch, channels, height, width)
