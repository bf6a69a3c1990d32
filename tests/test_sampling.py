"""Samplers: determinism under a seed, guidance arithmetic, output format."""

import dataclasses

import numpy as np
import pytest
import torch
from test_unet import SMALL, make_unet

from textimg.config import DiffusionConfig
from textimg.diffusion import GaussianDiffusion
from textimg.errors import TextimgError, TextimgWarning
from textimg.images import image_grid
from textimg.model.tokenizer import CharTokenizer
from textimg.sampling import guided_denoiser, sample


@pytest.fixture(scope="module")
def model():
    return make_unet()


@pytest.mark.parametrize("sampler", ["ddim", "ancestral"])
def test_same_seed_same_images(model, sampler: str) -> None:
    diffusion = GaussianDiffusion.from_config(DiffusionConfig())
    first = sample(model, diffusion, ["ab", ""], steps=4, guidance=2.0, seed=7, sampler=sampler)
    again = sample(model, diffusion, ["ab", ""], steps=4, guidance=2.0, seed=7, sampler=sampler)
    other = sample(model, diffusion, ["ab", ""], steps=4, guidance=2.0, seed=8, sampler=sampler)
    assert first.dtype == np.uint8 and first.shape == (2, 16, 16, 3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_guidance_one_is_the_conditional_model_and_zero_the_unconditional(model) -> None:
    tokenizer = CharTokenizer(SMALL.context_length)
    cond = tokenizer.encode_batch(["text", "ab"]).tokens
    null = tokenizer.null_tokens(2, cond.shape[1])
    x = torch.randn(2, 3, 16, 16)
    t = torch.tensor([100.0, 600.0])
    with torch.no_grad():
        torch.testing.assert_close(
            guided_denoiser(model, cond, null, 1.0)(x, t, None),
            model(x, t, cond),
            atol=1e-5,
            rtol=1e-5,
        )
        torch.testing.assert_close(
            guided_denoiser(model, cond, null, 0.0)(x, t, None),
            model(x, t, null),
            atol=1e-5,
            rtol=1e-5,
        )
        assert not torch.allclose(
            guided_denoiser(model, cond, null, 3.0)(x, t, None), model(x, t, cond)
        )


def test_image_grid_layout() -> None:
    images = np.stack([np.full((2, 3, 1), i, dtype=np.uint8) for i in range(5)])
    grid = image_grid(images, columns=3)
    assert grid.shape == (4, 9, 1)
    assert grid[0, 3, 0] == 1 and grid[2, 0, 0] == 3 and grid[3, 8, 0] == 0


@pytest.mark.parametrize("conditioning", ["weave", "glide"])
def test_learned_variance_model_samples_with_both_samplers(conditioning: str) -> None:
    model = make_unet(dataclasses.replace(SMALL, conditioning=conditioning), out_channels=6)
    diffusion = GaussianDiffusion.from_config(DiffusionConfig(learned_variance=True))
    for sampler in ("ancestral", "ddim"):
        images = sample(model, diffusion, ["hi"], steps=3, guidance=3.0, seed=1, sampler=sampler)
        again = sample(model, diffusion, ["hi"], steps=3, guidance=3.0, seed=1, sampler=sampler)
        assert images.shape == (1, 16, 16, 3) and np.array_equal(images, again)


def test_truncated_prompt_is_reported(model) -> None:
    diffusion = GaussianDiffusion.from_config(DiffusionConfig())
    with pytest.warns(TextimgWarning, match="model's 30 characters are cut to fit"):
        sample(model, diffusion, ["x" * 40], steps=1, seed=0)


def test_characters_outside_the_vocabulary_are_reported(model) -> None:
    diffusion = GaussianDiffusion.from_config(DiffusionConfig())
    with pytest.warns(TextimgWarning, match="1 prompt.* vocabulary lacks.*'\\U0001f600'"):
        sample(model, diffusion, ["ok", "hi \U0001f600"], steps=1, seed=0)


@pytest.mark.parametrize("sampler", ["ddim", "ancestral"])
def test_one_seed_per_prompt_makes_batching_invisible(model, sampler: str) -> None:
    """A prompt's images depend on its own seed only, not on which prompts share the batch."""
    diffusion = GaussianDiffusion.from_config(DiffusionConfig())
    options = {"steps": 4, "guidance": 2.0, "sampler": sampler}
    batched = sample(model, diffusion, ["ab", "ab", "xyz", "xyz"], seed=[5, 9], **options)
    pairs = (("ab", 5), ("xyz", 9))
    alone = [sample(model, diffusion, [p, p], seed=s, **options) for p, s in pairs]
    # The noise is the same draw for draw; the network's sums may differ in the last bits.
    assert np.abs(batched.astype(int) - np.concatenate(alone).astype(int)).max() <= 1
    assert not np.array_equal(batched[0], batched[1])  # the K samples of a prompt still differ
    assert np.array_equal(sample(model, diffusion, ["ab"], seed=[5], **options),
                          sample(model, diffusion, ["ab"], seed=5, **options))  # fmt: skip


def test_seeds_must_split_the_prompts_evenly(model) -> None:
    diffusion = GaussianDiffusion.from_config(DiffusionConfig())
    with pytest.raises(TextimgError, match="3 rows cannot be split evenly among 2 seeds"):
        sample(model, diffusion, ["a", "b", "c"], steps=1, seed=[1, 2])


@pytest.mark.parametrize("sampler", ["ddim", "ancestral"])
def test_self_conditioned_model_is_fed_the_previous_steps_clean_image(sampler: str) -> None:
    """Step k's network call reads, as `self_cond`, the x0 the sampler made of call k - 1; with
    guidance both branches read the same (guided) estimate."""
    model = make_unet(dataclasses.replace(SMALL, self_condition=True))
    diffusion = GaussianDiffusion.from_config(DiffusionConfig(prediction="v"))
    calls: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = []

    def record(module, args, kwargs, output):
        calls.append((args[0], kwargs.get("self_cond"), output))

    handle = model.register_forward_hook(record, with_kwargs=True)
    try:
        sample(model, diffusion, ["ab"], steps=3, guidance=1.0, sampler=sampler)
        respaced = diffusion.respace(3)
        assert [c[1] is None for c in calls] == [True, False, False]
        for step in range(len(calls) - 1):
            (x, _, output), fed = calls[step], calls[step + 1][1]
            index = torch.tensor([respaced.num_steps - 1 - step])
            torch.testing.assert_close(fed, respaced.interpret(output, x, index).x0)
        calls.clear()
        sample(model, diffusion, ["ab"], steps=3, guidance=3.0, sampler=sampler)
        fed = calls[-1][1]
        assert fed.shape[0] == 2 and torch.equal(fed[0], fed[1])
    finally:
        handle.remove()


def test_sampling_builds_no_autograd_graph(model, monkeypatch) -> None:
    """Every network call of a sampler runs without autograd: a graph kept over all the steps
    would hold each step's activations in memory."""
    diffusion = GaussianDiffusion.from_config(DiffusionConfig())
    grad_enabled = []
    forward = type(model).forward

    def recording(self, *args, **kwargs):
        grad_enabled.append(torch.is_grad_enabled())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", recording)
    sample(model, diffusion, ["ab"], steps=2, seed=0)
    assert grad_enabled and not any(grad_enabled)
