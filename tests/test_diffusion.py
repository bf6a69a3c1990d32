"""Diffusion: schedules, noising, targets, respacing and the losses."""

import pytest
import torch

from textimg.config import DiffusionConfig, choices
from textimg.diffusion import SCHEDULES, GaussianDiffusion, cosine_betas, linear_betas


def test_schedules_are_valid() -> None:
    """Every schedule a config may name has its betas, and each is a valid process."""
    assert set(SCHEDULES) == set(choices("diffusion", "schedule"))
    for betas in (cosine_betas(1000), linear_betas(1000)):
        assert betas.shape == (1000,)
        assert (betas > 0).all() and (betas <= 0.999).all()
    diffusion = GaussianDiffusion(cosine_betas(1000))
    assert diffusion.alphas_cumprod[0] > 0.999 and diffusion.alphas_cumprod[-1] < 1e-4


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_perfect_prediction_recovers_x0(prediction: str) -> None:
    diffusion = GaussianDiffusion(cosine_betas(1000), prediction=prediction)
    x0 = torch.rand(4, 3, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 100, 500, 990])
    x_t = diffusion.q_sample(x0, t, noise)
    prediction_ = diffusion.interpret(diffusion.target(x0, t, noise), x_t, t, clip=False)
    torch.testing.assert_close(prediction_.x0, x0, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(prediction_.eps, noise, atol=1e-3, rtol=1e-3)


def test_respacing_keeps_the_noise_levels() -> None:
    diffusion = GaussianDiffusion(cosine_betas(1000))
    short = diffusion.respace(10)
    assert short.num_steps == 10
    assert short.timesteps[0] == 0 and short.timesteps[-1] == 999
    torch.testing.assert_close(short.alphas_cumprod, diffusion.alphas_cumprod[short.timesteps])


def test_stratified_timesteps_cover_the_range() -> None:
    diffusion = GaussianDiffusion(cosine_betas(1000))
    t = diffusion.sample_timesteps(10, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert sorted((t // 100).tolist()) == list(range(10))


def test_hybrid_loss_trains_variance_only_through_vlb() -> None:
    config = DiffusionConfig(learned_variance=True)
    diffusion = GaussianDiffusion.from_config(config)
    output = torch.zeros(2, 6, 4, 4, requires_grad=True)

    def model(x, t, tokens):
        return output

    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    losses = diffusion.training_losses(
        model, x0, torch.tensor([0, 500]), None, torch.randn_like(x0)
    )
    assert set(losses) == {"loss", "mse", "vlb"}
    assert torch.isfinite(losses["loss"]).all() and (losses["vlb"] > 0).all()
    losses["vlb"].sum().backward()
    assert output.grad[:, :3].abs().sum() == 0  # mean channels detached in the VLB
    assert output.grad[:, 3:].abs().sum() > 0


def test_one_step_respacing_starts_from_pure_noise() -> None:
    short = GaussianDiffusion(cosine_betas(1000)).respace(1)
    assert short.timesteps.tolist() == [999]
    assert torch.isfinite(short.posterior_log_variance).all()


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_min_snr_weights_the_x0_error_by_min_snr_gamma(prediction: str) -> None:
    """Whatever the target, the weighted loss is min(SNR, gamma) x the x0 error (Hang et al.)."""
    gamma = 5.0
    diffusion = GaussianDiffusion(cosine_betas(1000), prediction=prediction, min_snr_gamma=gamma)
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 300, 600, 950])  # SNR from thousands to below 0.01
    error = 0.1 * torch.randn_like(x0)
    a = diffusion.sqrt_alphas_cumprod[t].float().view(-1, 1, 1, 1)
    s = diffusion.sqrt_one_minus_alphas_cumprod[t].float().view(-1, 1, 1, 1)
    x_t = diffusion.q_sample(x0, t, noise)
    eps_hat = (x_t - a * (x0 + error)) / s
    output = eps_hat if prediction == "eps" else a * eps_hat - s * (x0 + error)

    def model(x: torch.Tensor, _t: torch.Tensor, _tokens: torch.Tensor) -> torch.Tensor:
        return output

    losses = diffusion.training_losses(model, x0, t, torch.zeros(4, 3), noise)
    snr = diffusion.alphas_cumprod[t] / (1 - diffusion.alphas_cumprod[t])
    expected = snr.clamp(max=gamma).float() * error.pow(2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(losses["loss"], expected, rtol=2e-3, atol=1e-6)
    assert not torch.allclose(losses["loss"], losses["mse"])  # the weights did something


def test_min_snr_is_off_by_default_and_survives_respacing() -> None:
    plain = GaussianDiffusion.from_config(DiffusionConfig())
    assert torch.equal(plain.loss_weights(torch.tensor([0, 999])), torch.ones(2))
    weighted = GaussianDiffusion.from_config(DiffusionConfig(prediction="v", min_snr_gamma=5.0))
    assert weighted.respace(10).min_snr_gamma == 5.0


def test_importance_sampling_draws_t_by_the_min_snr_weights_and_keeps_the_objective() -> None:
    """t is drawn where the weights are large, every sample then weighs the same, and the batch
    mean still estimates the uniform-t Min-SNR objective for any per-step loss."""
    uniform = GaussianDiffusion(cosine_betas(1000), prediction="v", min_snr_gamma=5.0)
    config = DiffusionConfig(prediction="v", min_snr_gamma=5.0, timestep_sampling="importance")
    importance = GaussianDiffusion.from_config(config)
    generator = torch.Generator().manual_seed(0)
    t = torch.cat(
        [importance.sample_timesteps(64, generator, torch.device("cpu")) for _ in range(500)]
    )
    weights = uniform.loss_weight.double()
    # Drawn by the weights: the mean weight of the drawn steps is E_p[w] = sum w^2 / sum w.
    drawn = weights[t].mean().item()
    assert drawn == pytest.approx(((weights**2).sum() / weights.sum()).item(), rel=0.02)
    assert drawn > 1.3 * weights.mean().item()
    # Equal weights, equal to the uniform mean weight.
    per_sample = importance.loss_weights(t).double()
    assert torch.allclose(per_sample, torch.full_like(per_sample, weights.mean().item()))
    # Unbiased: a loss that varies with t averages to its uniform-t weighted mean.
    per_step_loss = torch.linspace(0.5, 2.0, 1000, dtype=torch.float64) ** 2
    estimate = (per_sample * per_step_loss[t]).mean().item()
    assert estimate == pytest.approx((weights * per_step_loss).mean().item(), rel=0.02)
    assert importance.respace(10).timestep_sampling == "importance"


def test_self_conditioning_feeds_a_no_grad_drafts_x0_to_the_trained_pass() -> None:
    diffusion = GaussianDiffusion.from_config(DiffusionConfig(prediction="v"))
    weight = torch.tensor(0.5, requires_grad=True)
    calls = []

    def model(x, t, tokens, self_cond=None):
        calls.append((torch.is_grad_enabled(), self_cond))
        return weight * x if self_cond is None else weight * x + self_cond

    x0, t = torch.rand(2, 1, 4, 4) * 2 - 1, torch.tensor([100, 700])
    noise = torch.randn_like(x0)
    plain = diffusion.training_losses(model, x0, t, None, noise)
    assert [grad for grad, _ in calls] == [True] and calls[0][1] is None
    calls.clear()
    losses = diffusion.training_losses(model, x0, t, None, noise, self_condition=True)
    assert [grad for grad, _ in calls] == [False, True]
    x_t = diffusion.q_sample(x0, t, noise)
    draft = diffusion.interpret((weight * x_t).detach(), x_t, t).x0
    torch.testing.assert_close(calls[1][1], draft)
    assert not calls[1][1].requires_grad and not torch.allclose(losses["loss"], plain["loss"])
