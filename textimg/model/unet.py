"""The text-conditioned U-Net: improved-diffusion's network plus the post's text machinery.

ResBlocks take the timestep through scale-shift norm, BigGAN-style ResBlocks resample between
levels, self-attention runs at the low resolutions, and a weave attention follows every decoder
block at the text resolutions. The network sees only `(x_t, t, tokens)`, plus the low-res image
for a super-resolution model; the noise schedule lives in `textimg.diffusion`.

Blocks keep improved-diffusion's names (`input_blocks.N`, `middle_block`, `output_blocks.N`), so
the super-resolution model is this class with more input channels and one more outer level,
warm-started by shifting `input_blocks` indices (the post's "sandwich", `textimg.warm_start`).

`conditioning = "glide"` swaps weave attention for GLIDE's (Nichol et al. 2021, section 2.3)
coupling: the encoder output is projected into every self-attention layer as extra keys and
values, at the attention and text resolutions of both encoder and decoder.

`pooled_text = True` adds a second, global path from the transcript: the masked mean of the
encoder's tokens goes through an MLP into the timestep embedding (Imagen, Saharia et al. 2022;
GLIDE projects its last token the same way), so the scale-shift norm of every ResBlock, at every
resolution, is told what to write, while weave attention still says where each character goes.
The MLP's output layer starts at zero, so the network starts as without it.

`self_condition = True` (Chen et al. 2022, "Analog Bits") gives the network its own previous
estimate of the clean image as extra input channels (`self_cond`; zeros when there is none):
the sampler feeds back each step's x0, and training feeds a no-grad first pass's x0 on half the
steps (`GaussianDiffusion.training_losses`), so the network learns to refine a draft rather
than start from the noise alone at every step. Base models only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from textimg.config import ModelConfig, SuperResConfig
from textimg.errors import TextimgError
from textimg.model.layers import (
    Conditioning,
    LayerNorm,
    attention,
    group_norm,
    timestep_embedding,
    zero_module,
)
from textimg.model.text_encoder import TextEncoder
from textimg.model.weave import AxialPositionEmbedding, WeaveAttention


def upsample_low_res(low_res: torch.Tensor, size: int, config: SuperResConfig) -> torch.Tensor:
    """The low-res input resized to the output side: bilinear as the original (`up_interp_mode`),
    or antialiased bicubic, clamped because bicubic overshoots the [-1, 1] data range."""
    if config.upsample == "bilinear":
        return F.interpolate(low_res, size=(size, size), mode="bilinear", align_corners=False)
    resized = F.interpolate(
        low_res, size=(size, size), mode="bicubic", align_corners=False, antialias=True
    )
    return resized.clamp(-1, 1)


class ResBlock(nn.Module):
    """GN-SiLU-conv twice, timestep by scale-shift on the second norm, optional 2x resampling."""

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        out_channels: int,
        groups: int,
        dropout: float,
        resample: str | None = None,
    ) -> None:
        super().__init__()
        self.resample = resample  # None | "up" | "down" (BigGAN: resample inside the block)
        self.in_norm = group_norm(channels, groups)
        self.in_conv = nn.Conv2d(channels, out_channels, 3, padding=1)
        self.emb_projection = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels))
        self.out_norm = group_norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.out_conv = zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = (
            nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)
        )

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        return x

    def forward(self, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        h = self.in_conv(self._resample(F.silu(self.in_norm(x))))
        scale, shift = self.emb_projection(cond.emb)[:, :, None, None].chunk(2, dim=1)
        h = self.out_norm(h) * (1 + scale) + shift
        h = self.out_conv(self.dropout(F.silu(h)))
        return self._resample(self.skip(x)) + h


class SelfAttention(nn.Module):
    """Spatial self-attention with `head_channels`-wide heads; zero-initialised output.

    Given `text_dim` (GLIDE conditioning), the encoder output is layer-normed and projected to
    extra keys and values that every pixel attends to alongside the other pixels. Its score
    matrix is H*W x (H*W + text_len), against weave's text_len x H*W.
    """

    def __init__(
        self, channels: int, head_channels: int, groups: int, text_dim: int | None = None
    ) -> None:
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.text_kv = (
            nn.Sequential(LayerNorm(text_dim), nn.Linear(text_dim, 2 * channels))
            if text_dim
            else None
        )
        self.out = zero_module(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        batch, channels, height, width = x.shape
        # The 1x1 qkv conv as a matmul on pixel tokens, so q, k and v come out channel-contiguous
        # as the fused attention kernels need (the conv's (B, 3C, H, W) output, flattened and
        # transposed, strides its channels by H*W). Still a Conv2d, so checkpoints load.
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        qkv = F.linear(tokens, self.qkv.weight.flatten(1), self.qkv.bias)
        q, k, v = qkv.chunk(3, dim=-1)
        mask = None
        if self.text_kv is not None:
            text_k, text_v = self.text_kv(cond.text).chunk(2, dim=-1)
            k, v = torch.cat([text_k, k], dim=1), torch.cat([text_v, v], dim=1)
            pixels = torch.ones(batch, height * width, dtype=torch.bool, device=x.device)
            mask = torch.cat([cond.text_mask, pixels], dim=1)  # pixels keep every row non-empty
        h = attention(q, k, v, self.heads, mask)
        return x + self.out(h.transpose(1, 2).reshape(batch, channels, height, width))


class Block(nn.ModuleList):
    """A sequence of layers that all take `(h, cond)`."""

    def forward(self, h: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        for layer in self:
            h = layer(h, cond)
        return h


class UNet(nn.Module):
    """Predicts the diffusion target for noisy images `x` (B, C, S, S) at `t` given `tokens`.

    With `super_resolution.low_res_size` set it also takes `low_res` (B, C, s, s) in [-1, 1] and,
    with noise conditioning, the augmentation step `low_res_t` it was noised to (a second
    timestep embedding added to the first, as in Imagen and the author's later cascades).
    """

    def __init__(
        self,
        config: ModelConfig,
        out_channels: int,
        super_resolution: SuperResConfig | None = None,
    ) -> None:
        super().__init__()
        super_resolution = super_resolution or SuperResConfig()
        if config.self_condition and super_resolution.low_res_size:
            raise TextimgError("model.self_condition is for base models, not super-resolution")
        self.config = config
        self.super_resolution = super_resolution
        self._glide = config.conditioning == "glide"
        self._emb = 4 * config.model_channels
        # Built in this order (embeddings, encoder, then the levels) so a seed draws the same
        # initial weights whatever the code layout.
        self._build_conditioning()
        self.position_embeddings = nn.ModuleDict()
        ch = self._build_encoder_levels()
        self.middle_block = Block(
            [self._res_block(ch, ch), self._self_attention(ch), self._res_block(ch, ch)]
        )
        ch = self._build_decoder_levels(ch)
        self.out = nn.Sequential(
            group_norm(ch, config.norm_groups),
            nn.SiLU(),
            zero_module(nn.Conv2d(ch, out_channels, 3, padding=1)),
        )

    def _time_embedding(self) -> nn.Sequential:
        ch, emb = self.config.model_channels, self._emb
        return nn.Sequential(nn.Linear(ch, emb), nn.SiLU(), nn.Linear(emb, emb))

    def _build_conditioning(self) -> None:
        """The timestep embeddings (a second one for a noise-conditioned low-res input), the text
        encoder and the pooled-text projection into the timestep embedding."""
        config, emb, sr = self.config, self._emb, self.super_resolution
        self.time_embedding = self._time_embedding()
        self.low_res_time_embedding = (
            self._time_embedding() if sr.low_res_size and sr.noise_conditioning else None
        )
        self.text_encoder = TextEncoder(
            dim=config.text_dim,
            depth=config.text_depth,
            head_channels=config.text_head_channels,
            ff_mult=config.text_ff_mult,
            context_length=config.context_length,
            max_lines=config.max_lines,
            relative_buckets=config.relative_buckets,
            relative_max_distance=config.relative_max_distance,
        )
        self.text_to_time = (
            nn.Sequential(
                LayerNorm(config.text_dim),
                nn.Linear(config.text_dim, emb),
                nn.SiLU(),
                zero_module(nn.Linear(emb, emb)),
            )
            if config.pooled_text
            else None
        )

    def _res_block(self, c_in: int, c_out: int, resample: str | None = None) -> ResBlock:
        config = self.config
        return ResBlock(c_in, self._emb, c_out, config.norm_groups, config.dropout, resample)

    def _self_attention(self, c: int) -> SelfAttention:
        config = self.config
        text_dim = config.text_dim if self._glide else None
        return SelfAttention(c, config.head_channels, config.norm_groups, text_dim)

    def _attention_layers(self, c: int, resolution: int, decoder: bool) -> list[nn.Module]:
        """Self-attention where the config asks for it; weave attention (with its axial position
        embedding, one per resolution) in the decoder at the text resolutions."""
        config, glide = self.config, self._glide
        layers: list[nn.Module] = []
        if resolution in config.attention_resolutions or (
            glide and resolution in config.text_resolutions
        ):
            layers.append(self._self_attention(c))
        if decoder and not glide and resolution in config.text_resolutions:
            key = str(resolution)
            if key not in self.position_embeddings:
                self.position_embeddings[key] = AxialPositionEmbedding(2 * c, resolution)
            layers.append(
                WeaveAttention(
                    c,
                    self._emb,
                    config.text_dim,
                    config.cross_attention_head_channels,
                    config.weave_ff_mult,
                )
            )
        return layers

    def _build_encoder_levels(self) -> int:
        """The input blocks, level by level down; returns the channels at the bottom and leaves
        the skip channels for the decoder."""
        config = self.config
        ch, resolution = config.model_channels, config.image_size
        # A super-resolution model sees the noisy image and the upsampled low-res one, stacked;
        # a self-conditioned one the noisy image and its previous x0 estimate.
        stacked = 2 if self.super_resolution.low_res_size or config.self_condition else 1
        in_channels = config.image_channels * stacked
        input_conv = _IgnoreConditioning(nn.Conv2d(in_channels, ch, 3, padding=1))
        self.input_blocks = nn.ModuleList([Block([input_conv])])
        self._skip_channels = [ch]
        for level, mult in enumerate(config.channel_mult):
            for _ in range(config.num_res_blocks):
                layers = [self._res_block(ch, mult * config.model_channels)]
                ch = mult * config.model_channels
                layers += self._attention_layers(ch, resolution, decoder=False)
                self.input_blocks.append(Block(layers))
                self._skip_channels.append(ch)
            if level < len(config.channel_mult) - 1:
                self.input_blocks.append(Block([self._res_block(ch, ch, "down")]))
                self._skip_channels.append(ch)
                resolution //= 2
        self._bottom_resolution = resolution
        return ch

    def _build_decoder_levels(self, ch: int) -> int:
        """The output blocks, level by level up, each joined by its encoder skip; returns the
        channels at the top."""
        config, resolution, skips = self.config, self._bottom_resolution, self._skip_channels
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for index in range(config.num_res_blocks + 1):
                layers = [self._res_block(ch + skips.pop(), mult * config.model_channels)]
                ch = mult * config.model_channels
                layers += self._attention_layers(ch, resolution, decoder=True)
                if level and index == config.num_res_blocks:
                    layers.append(self._res_block(ch, ch, "up"))
                    resolution *= 2
                self.output_blocks.append(Block(layers))
        return ch

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        tokens: torch.Tensor,
        low_res: torch.Tensor | None = None,
        low_res_t: torch.Tensor | None = None,
        self_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        text, text_mask = self.text_encoder(tokens, t)
        emb = self.time_embedding(timestep_embedding(t, self.config.model_channels))
        if self.text_to_time is not None:
            weights = text_mask.to(text.dtype)[..., None]
            pooled = (text * weights).sum(1) / weights.sum(1)
            emb = emb + self.text_to_time(pooled)
        h = x
        if self.config.self_condition:
            h = torch.cat([x, torch.zeros_like(x) if self_cond is None else self_cond], 1)
        elif self_cond is not None:
            raise TextimgError("self_cond given to a model without model.self_condition")
        if self.super_resolution.low_res_size:
            if low_res is None:
                raise TextimgError("a super-resolution model needs the low-res image")
            h = torch.cat([x, upsample_low_res(low_res, x.shape[-1], self.super_resolution)], 1)
            if self.low_res_time_embedding is not None:
                if low_res_t is None:
                    raise TextimgError("a noise-conditioned model needs the low-res noise step")
                steps = timestep_embedding(low_res_t, self.config.model_channels)
                emb = emb + self.low_res_time_embedding(steps)
        cond = Conditioning(
            emb=emb,
            text=text,
            text_mask=text_mask,
            positions={int(size): table() for size, table in self.position_embeddings.items()},
        )
        skips = []
        for block in self.input_blocks:
            h = self._run(block, h, cond)
            skips.append(h)
        h = self.middle_block(h, cond)
        for block in self.output_blocks:
            h = self._run(block, torch.cat([h, skips.pop()], dim=1), cond)
        return self.out(h)

    def _run(self, block: Block, h: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """One block; at `model.checkpoint_resolutions` its activations are recomputed in the
        backward pass instead of stored (memory for ~a third more compute at that level)."""
        if h.shape[-1] in self.config.checkpoint_resolutions and torch.is_grad_enabled():
            return checkpoint(block, h, cond, use_reentrant=False)
        return block(h, cond)


class _IgnoreConditioning(nn.Module):
    """Adapts a plain layer to the `(h, cond)` call used by `Block`."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, h: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return self.layer(h)
