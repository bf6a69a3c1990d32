"""What makes a training step fast on a GPU, checked on the CPU at tiny sizes.

Every recipe's network, shrunk to a few channels (its resolutions, levels, attention placement
and conditioning kept), must hand `F.scaled_dot_product_attention` channel-contiguous q/k/v in
the GPU's contiguous layout (fused kernels refuse anything else), run its norms in the autocast
dtype, compile without graph breaks and without a recompile per batch, and give the same
gradients with activation checkpointing on.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from textimg.config import RunConfig, load_recipe
from textimg.model import CharTokenizer, build_model
from textimg.model.layers import GroupNorm, LayerNorm
from textimg.model.weave import AdaGroupNorm
from textimg.recipe_files import recipe_names
from textimg.train import conditioning_tokens, text_length_bucket

torch.set_num_threads(1)


def shrunk(recipe: str) -> RunConfig:
    """The recipe's network with 16-channel levels and a 32-wide text encoder."""
    config = load_recipe(recipe)
    model = dataclasses.replace(
        config.model,
        model_channels=16,
        head_channels=16,
        norm_groups=8,
        text_dim=32,
        text_head_channels=16,
        cross_attention_head_channels=16,
        context_length=16,
    )
    return dataclasses.replace(config, model=model)


def inputs(config: RunConfig, batch: int = 2, length: int = 16) -> dict[str, torch.Tensor]:
    """Random model inputs of the config's shapes (noise, timesteps, tokens, low-res image)."""
    m, low = config.model, config.super_resolution.low_res_size
    generator = torch.Generator().manual_seed(0)
    result = {
        "x": torch.randn(batch, m.image_channels, m.image_size, m.image_size, generator=generator),
        "t": torch.tensor([10.0, 900.0][:batch]),
        "tokens": torch.randint(5, 90, (batch, length), generator=generator),
    }
    if low:
        result["low_res"] = torch.rand(batch, m.image_channels, low, low, generator=generator)
    return result


@pytest.mark.parametrize("recipe", recipe_names())
def test_every_attention_call_gets_channel_contiguous_inputs(recipe: str, monkeypatch) -> None:
    config = shrunk(recipe)
    torch.manual_seed(0)
    model = build_model(config)  # contiguous weights and activations, as trained on a GPU
    original = F.scaled_dot_product_attention
    strides = []

    def recording(query, key, value, *args, **kwargs):
        strides.append(tuple(tensor.stride(-1) for tensor in (query, key, value)))
        return original(query, key, value, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    with torch.no_grad():
        model(**inputs(config, batch=1))
    assert strides and all(stride == (1, 1, 1) for stride in strides), strides
    if recipe == "base64":
        # 11 self-attentions (16 and 8 px), 9 weave blocks of two, 4 text-encoder layers.
        assert len(strides) == 11 + 2 * 9 + 4


def test_norms_and_modulation_run_in_the_autocast_dtype() -> None:
    """Under bf16 autocast every norm (GroupNorm, LayerNorm, AdaGN) outputs bf16 even for an fp32
    input, as CUDA autocast alone would not (it runs norms in fp32); without autocast, fp32."""
    config = shrunk("base64")
    model = build_model(config)
    assert not [m for m in model.modules() if type(m) in (nn.GroupNorm, nn.LayerNorm)]
    dtypes: dict[str, set[torch.dtype]] = {}

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        dtypes.setdefault(type(module).__name__, set()).add(output.dtype)

    for module in model.modules():
        if isinstance(module, GroupNorm | LayerNorm | AdaGroupNorm):
            module.register_forward_hook(record)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(**inputs(config, batch=1))
    assert dtypes == {name: {torch.bfloat16} for name in ("GroupNorm", "LayerNorm", "AdaGroupNorm")}
    dtypes.clear()
    with torch.no_grad():
        model(**inputs(config, batch=1))
    assert dtypes == {name: {torch.float32} for name in ("GroupNorm", "LayerNorm", "AdaGroupNorm")}


def test_text_is_padded_to_a_few_fixed_lengths() -> None:
    assert [text_length_bucket(n, 384) for n in (3, 8, 9, 17, 100, 300, 384)] == [
        8,
        8,
        16,
        32,
        128,
        384,
        384,
    ]
    tokenizer = CharTokenizer(64)
    lengths = set()
    for size in range(1, 70):
        tokens, _ = conditioning_tokens(["x" * size, "ab"], tokenizer, 0.0, torch.Generator())
        lengths.add(tokens.shape[1])
    assert lengths == {8, 16, 32, 64}


@pytest.mark.parametrize("recipe", ["tiny", "tiny-sr", "cpu-proof-short"])
def test_compiles_without_graph_breaks(recipe: str) -> None:
    config = shrunk(recipe)
    if recipe == "cpu-proof-short":  # self-conditioned and pooled, as its benchmark trains it
        model_config = dataclasses.replace(config.model, self_condition=True, pooled_text=True)
        config = dataclasses.replace(config, model=model_config)
    model = build_model(config)
    arguments = inputs(config)
    if config.model.self_condition:
        arguments["self_cond"] = torch.zeros_like(arguments["x"])
    explanation = torch._dynamo.explain(model)(**arguments)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_training_batches_compile_once_per_text_bucket() -> None:
    """New transcripts, new timesteps, new images: no recompile while the text bucket holds."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    config = shrunk("tiny")
    model = build_model(config)
    counter = CompileCounter()
    compiled = torch.compile(model, backend=counter)
    tokenizer = CharTokenizer(config.model.context_length)
    generator = torch.Generator().manual_seed(0)
    for texts in (["ab", "xyz"], ["hello", "a"], ["Hi", "ok"], ["a much longer one", "b"]):
        tokens, _ = conditioning_tokens(texts, tokenizer, 0.1, generator)
        batch = inputs(config, length=tokens.shape[1])
        batch["tokens"] = tokens
        compiled(**batch).sum().backward()
    assert counter.frame_count == 2  # one for each of the two text buckets (8 and 16 tokens)
    torch._dynamo.reset()


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    config = shrunk("tiny-sr")
    batch = inputs(config)
    gradients, calls = [], []
    for resolutions in ((), (64, 32)):
        model_config = dataclasses.replace(
            config.model, checkpoint_resolutions=resolutions, dropout=0.1
        )
        torch.manual_seed(0)
        model = build_model(dataclasses.replace(config, model=model_config))
        nn.init.normal_(model.out[-1].weight, std=0.1)  # a zero head would stop every gradient
        forwards: list[int] = []
        model.input_blocks[1].register_forward_pre_hook(lambda *_, seen=forwards: seen.append(1))
        torch.manual_seed(1)  # the same dropout masks, recomputed ones included
        model(**batch).square().mean().backward()
        calls.append(len(forwards))
        gradients.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert calls == [1, 2]  # checkpointed: run again in the backward pass
    plain, checkpointed = gradients
    assert plain.keys() == checkpointed.keys() and len(plain) > 100
    for name, gradient in plain.items():
        torch.testing.assert_close(checkpointed[name], gradient, msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("recipe", ["base64", "sr"])
def test_cuda_step_runs_on_fused_attention_kernels_only(recipe: str) -> None:
    """On a GPU, forward and backward under bf16 autocast with the math fallback forbidden:
    any attention call whose inputs a fused kernel refuses fails here."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    config = shrunk(recipe)
    model = build_model(config).cuda()
    batch = {name: tensor.cuda() for name, tensor in inputs(config, length=16).items()}
    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]
    with sdpa_kernel(fused), torch.autocast("cuda", dtype=torch.bfloat16):
        model(**batch).float().square().mean().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
