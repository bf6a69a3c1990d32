"""U-Net: shapes, text conditioning, padding invariance, weave placement."""

import dataclasses

import pytest
import torch
from torch import nn

from textimg.config import ModelConfig, RunConfig, SuperResConfig
from textimg.errors import TextimgError
from textimg.model import build_model
from textimg.model.tokenizer import CharTokenizer
from textimg.model.unet import SelfAttention, UNet
from textimg.model.weave import WeaveAttention

SMALL = ModelConfig(
    image_size=16,
    image_channels=3,
    model_channels=16,
    channel_mult=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(8,),
    text_resolutions=(8, 16),
    head_channels=16,
    norm_groups=8,
    text_dim=32,
    text_head_channels=16,
    cross_attention_head_channels=16,
    context_length=32,
)


def make_unet(config: ModelConfig = SMALL, out_channels: int = 3) -> UNet:
    torch.manual_seed(0)
    model = UNet(config, out_channels=out_channels)
    # The output conv starts at zero (identity residual); give it weights so inputs show.
    nn.init.normal_(model.out[-1].weight, std=0.1)
    return model.eval()


def tokens(*texts: str, pad_to: int | None = None) -> torch.Tensor:
    return CharTokenizer(32).encode_batch(list(texts), pad_to=pad_to).tokens


def test_output_shape_and_learned_variance_channels() -> None:
    config = RunConfig(model=SMALL)
    learned = dataclasses.replace(
        config, diffusion=dataclasses.replace(config.diffusion, learned_variance=True)
    )
    x = torch.randn(2, 3, 16, 16)
    t = torch.tensor([3.0, 800.0])
    assert build_model(config)(x, t, tokens("a", "bc")).shape == (2, 3, 16, 16)
    assert build_model(learned)(x, t, tokens("a", "bc")).shape == (2, 6, 16, 16)


def test_glide_conditioning_reads_text_in_every_self_attention() -> None:
    model = make_unet(dataclasses.replace(SMALL, conditioning="glide"))
    assert not any(isinstance(m, WeaveAttention) for m in model.modules())
    assert len(model.position_embeddings) == 0
    attentions = [m for m in model.modules() if isinstance(m, SelfAttention)]
    # Encoder and decoder blocks at 8 and 16 px (text resolutions) plus the middle block.
    assert len(attentions) == 2 * SMALL.num_res_blocks + 2 * (SMALL.num_res_blocks + 1) + 1
    assert all(m.text_kv is not None for m in attentions)
    for layer in attentions:  # zero-initialised outputs would hide the text at init
        nn.init.normal_(layer.out.weight, std=0.1)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3.0, 800.0])
    with torch.no_grad():
        assert not torch.allclose(model(x, t, tokens("ab", "ab")), model(x, t, tokens("ab", "cd")))
        padded = model(x, t, tokens("ab", "cd", pad_to=12))
        assert torch.allclose(model(x, t, tokens("ab", "cd")), padded, atol=1e-5)


def test_weave_only_in_decoder_at_text_resolutions() -> None:
    model = make_unet()
    decoder = sum(isinstance(m, WeaveAttention) for m in model.output_blocks.modules())
    encoder = sum(isinstance(m, WeaveAttention) for m in model.input_blocks.modules())
    assert encoder == 0
    assert decoder == 2 * (SMALL.num_res_blocks + 1)  # every decoder block at 8 and 16 px
    assert sorted(model.position_embeddings) == ["16", "8"]


def test_text_changes_output_and_padding_does_not() -> None:
    model = make_unet()
    x = torch.randn(1, 3, 16, 16)
    t = torch.tensor([400.0])
    with torch.no_grad():
        base = model(x, t, tokens("hello"))
        padded = model(x, t, tokens("hello", pad_to=30))
        other = model(x, t, tokens("hellp"))
    torch.testing.assert_close(padded, base, atol=1e-5, rtol=1e-5)
    assert (other - base).abs().max() > 1e-4


def test_empty_transcript_gives_finite_output_and_gradients() -> None:
    model = make_unet().train()
    out = model(torch.randn(2, 3, 16, 16), torch.tensor([0.0, 999.0]), tokens("", ""))
    out.pow(2).mean().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_grayscale_model_runs() -> None:
    config = dataclasses.replace(SMALL, image_channels=1)
    out = make_unet(config, out_channels=1)(
        torch.randn(1, 1, 16, 16), torch.tensor([1.0]), tokens("x")
    )
    assert out.shape == (1, 1, 16, 16)


def test_runs_under_bf16_autocast_like_the_gpu_path() -> None:
    model = make_unet()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 16, 16), torch.tensor([1.0, 500.0]), tokens("ab", ""))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def test_pooled_text_reaches_the_network_without_any_attention() -> None:
    """With no weave or self-attention, the transcript enters only through the pooled path."""
    plain = dataclasses.replace(SMALL, attention_resolutions=(), text_resolutions=())
    pooled, blind = make_unet(dataclasses.replace(plain, pooled_text=True)), make_unet(plain)
    for parameter in [*pooled.parameters(), *blind.parameters()]:
        if not parameter.any():  # zero-started layers (ResBlock outputs, the pooled MLP's last
            nn.init.normal_(parameter, std=0.1)  # layer) would hide the embedding at init
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3.0, 800.0])
    with torch.no_grad():
        ab, cd = pooled(x, t, tokens("ab", "ab")), pooled(x, t, tokens("ab", "cd"))
        assert (ab[1] - cd[1]).abs().max() > 1e-4
        torch.testing.assert_close(ab[0], cd[0])
        padded = pooled(x, t, tokens("ab", "cd", pad_to=12))
        torch.testing.assert_close(padded, cd, atol=1e-5, rtol=1e-5)
        assert torch.equal(blind(x, t, tokens("ab", "ab")), blind(x, t, tokens("ab", "cd")))


def test_self_conditioned_model_reads_its_estimate_and_zeros_stand_in_for_none() -> None:
    model = make_unet(dataclasses.replace(SMALL, self_condition=True))
    x, t, text = torch.randn(2, 3, 16, 16), torch.tensor([3.0, 800.0]), tokens("ab", "cd")
    with torch.no_grad():
        none = model(x, t, text)
        zeros = model(x, t, text, self_cond=torch.zeros_like(x))
        draft = model(x, t, text, self_cond=torch.rand_like(x))
    torch.testing.assert_close(none, zeros)
    assert (draft - none).abs().max() > 1e-3
    with pytest.raises(TextimgError, match="without model.self_condition"):
        make_unet()(x, t, text, self_cond=x)
    with pytest.raises(TextimgError, match="base models"):
        UNet(dataclasses.replace(SMALL, self_condition=True), 3, SuperResConfig(low_res_size=8))
