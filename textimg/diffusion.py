"""Gaussian diffusion: schedules, forward noising and training losses. The network is an argument.

Follows improved-diffusion (Nichol & Dhariwal 2021): T=1000 discrete steps, cosine or linear
betas, epsilon or v prediction (Salimans & Ho 2022), and optionally a learned-range variance
trained with the hybrid loss L_simple + lambda * L_vlb (stop-gradient on the mean in L_vlb).
`respace` gives the shorter process that the samplers in `textimg.sampling` walk.

The model is any callable `model(x_t, t, tokens, **model_inputs) -> output` where `t` holds
original timesteps (0..T-1, possibly as floats) and `output` has C channels, or 2C with a
learned variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from textimg.config import DiffusionConfig
from textimg.errors import TextimgError


def cosine_betas(steps: int, offset: float = 0.008) -> torch.Tensor:
    """alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) * pi/2), betas clipped at 0.999 (iDDPM eq. 17)."""

    def alpha_bar(t: torch.Tensor) -> torch.Tensor:
        return torch.cos((t / steps + offset) / (1 + offset) * math.pi / 2) ** 2

    t = torch.arange(steps, dtype=torch.float64)
    return (1 - alpha_bar(t + 1) / alpha_bar(t)).clamp(max=0.999)


def linear_betas(steps: int) -> torch.Tensor:
    """DDPM's linear schedule, rescaled so any step count spans the same noise range."""
    scale = 1000 / steps
    return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)


SCHEDULES = {"cosine": cosine_betas, "linear": linear_betas}


def _gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] as float32 shaped to broadcast over image `like`."""
    out = values.to(t.device)[t].float()
    return out.view(-1, *([1] * (like.dim() - 1)))


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N1 || N2) elementwise, in nats."""
    return 0.5 * (
        logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
        - 1
    )


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """Log-likelihood of 8-bit data in [-1, 1] under a Gaussian integrated over each bin (DDPM)."""

    def cdf(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1.0 + torch.erf(v / math.sqrt(2.0)))

    inv_std = torch.exp(-log_scale)
    cdf_plus = cdf(inv_std * (x - mean + 1 / 255))
    cdf_minus = cdf(inv_std * (x - mean - 1 / 255))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1 - cdf_minus).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_minus).clamp(min=1e-12))
    return torch.where(
        x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta)
    )


@dataclass(frozen=True)
class Prediction:
    """What the network's output means at one step: clean image, noise, and the reverse variance."""

    x0: torch.Tensor
    eps: torch.Tensor
    log_variance: torch.Tensor


class GaussianDiffusion:
    """A discrete diffusion process; `timesteps[i]` is the original timestep of step i.

    The settings come checked from `DiffusionConfig` (`from_config`, `respace`).
    """

    def __init__(
        self,
        betas: torch.Tensor,
        prediction: str = "eps",
        learned_variance: bool = False,
        vlb_weight: float = 1e-3,
        timesteps: torch.Tensor | None = None,
        min_snr_gamma: float = 0.0,
        timestep_sampling: str = "uniform",
    ) -> None:
        self.betas = betas.double()
        self.num_steps = len(betas)
        self.prediction = prediction
        self.learned_variance = learned_variance
        self.vlb_weight = vlb_weight
        self.min_snr_gamma = min_snr_gamma
        self.timesteps = timesteps if timesteps is not None else torch.arange(self.num_steps)
        alphas = 1 - self.betas
        self.alphas_cumprod = torch.cumprod(alphas, dim=0)
        previous = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.alphas_cumprod_prev = previous
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1 - self.alphas_cumprod).sqrt()
        # Posterior q(x_{t-1} | x_t, x_0); its variance at t=0 is 0, so the log uses step 1's.
        self.posterior_variance = self.betas * (1 - previous) / (1 - self.alphas_cumprod)
        first = self.posterior_variance[1:2] if self.num_steps > 1 else self.betas[:1]
        self.posterior_log_variance = torch.log(torch.cat([first, self.posterior_variance[1:]]))
        self.posterior_mean_x0 = self.betas * previous.sqrt() / (1 - self.alphas_cumprod)
        self.posterior_mean_xt = (1 - previous) * alphas.sqrt() / (1 - self.alphas_cumprod)
        # Min-SNR-gamma (Hang et al. 2023) weights the x0 error by min(SNR, gamma) so the many
        # nearly clean steps do not dominate the gradient; in units of the network's own target
        # that is min(SNR, gamma) / SNR for eps and min(SNR, gamma) / (SNR + 1) for v.
        snr = self.alphas_cumprod / (1 - self.alphas_cumprod)
        denominator = snr if prediction == "eps" else snr + 1
        self.loss_weight = (
            (snr.clamp(max=min_snr_gamma) / denominator).float()
            if min_snr_gamma
            else torch.ones(self.num_steps)
        )
        # Importance sampling (timestep_sampling = "importance") draws t in proportion to those
        # weights and divides each sample's weight by its density, so every sample of a batch
        # carries the same weight: the same objective as uniform t, but without the ~40% of a
        # Min-SNR-5 batch whose weights are under 0.2 and add compute but little gradient.
        self.timestep_sampling = timestep_sampling
        density = (
            self.loss_weight.double()
            if timestep_sampling == "importance"
            else torch.ones(self.num_steps, dtype=torch.float64)
        )
        self.timestep_density = density / density.sum()
        self._timestep_cdf = torch.cumsum(self.timestep_density, dim=0)
        # 1 / (T p(t)): the factor that keeps a non-uniform draw an unbiased estimate of the
        # uniform-t objective (ones for uniform sampling); computed once, not per batch.
        self._density_correction = (1 / (self.num_steps * self.timestep_density)).float()
        self._sample_weight = self.loss_weight * self._density_correction

    @classmethod
    def from_config(cls, config: DiffusionConfig) -> GaussianDiffusion:
        return cls(
            SCHEDULES[config.schedule](config.steps),
            prediction=config.prediction,
            learned_variance=config.learned_variance,
            vlb_weight=config.vlb_weight,
            min_snr_gamma=config.min_snr_gamma,
            timestep_sampling=config.timestep_sampling,
        )

    def respace(self, count: int) -> GaussianDiffusion:
        """The same process observed at `count` evenly spaced timesteps (iDDPM section 4)."""
        if not 1 <= count <= self.num_steps:
            raise TextimgError(
                f"sampling steps must be between 1 and {self.num_steps}, got {count}"
            )
        # Sampling must start at the noisiest step, so it is always kept (and step 0 too when
        # there are two or more steps).
        last = self.num_steps - 1
        grid = torch.linspace(0, last, count) if count > 1 else torch.tensor([float(last)])
        keep = grid.round().long().unique()
        alphas_cumprod = self.alphas_cumprod[keep]
        previous = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        return GaussianDiffusion(
            1 - alphas_cumprod / previous,
            prediction=self.prediction,
            learned_variance=self.learned_variance,
            vlb_weight=self.vlb_weight,
            timesteps=self.timesteps[keep],
            min_snr_gamma=self.min_snr_gamma,
            timestep_sampling=self.timestep_sampling,
        )

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) noise."""
        return (
            _gather(self.sqrt_alphas_cumprod, t, x0) * x0
            + _gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        )

    def target(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the network is trained to output: the noise, or v = sqrt(ab) eps - sqrt(1-ab) x0."""
        if self.prediction == "eps":
            return noise
        return (
            _gather(self.sqrt_alphas_cumprod, t, x0) * noise
            - _gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * x0
        )

    def loss_weights(self, t: torch.Tensor) -> torch.Tensor:
        """Per-sample MSE weights at step indices `t` drawn by `sample_timesteps`: Min-SNR-gamma's
        (ones when it is off) over T p(t), so the batch mean estimates the uniform-t objective."""
        return self._sample_weight.to(t.device)[t]

    def interpret(
        self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, clip: bool = True
    ) -> Prediction:
        """Turn a raw network output at step index `t` into x0, eps and the reverse log variance."""
        channels = x_t.shape[1]
        mean_output, variance_output = output[:, :channels], output[:, channels:]
        a = _gather(self.sqrt_alphas_cumprod, t, x_t)
        s = _gather(self.sqrt_one_minus_alphas_cumprod, t, x_t)
        x0 = (x_t - s * mean_output) / a if self.prediction == "eps" else a * x_t - s * mean_output
        if clip:
            x0 = x0.clamp(-1, 1)
        eps = (x_t - a * x0) / s
        min_log = _gather(self.posterior_log_variance, t, x_t)
        if self.learned_variance:
            max_log = _gather(torch.log(self.betas), t, x_t)
            fraction = (variance_output + 1) / 2
            log_variance = fraction * max_log + (1 - fraction) * min_log
        else:
            # Fixed small (posterior) variance: cleaner than beta_t when sampling with few steps.
            log_variance = min_log.expand_as(x_t)
        return Prediction(x0=x0, eps=eps, log_variance=log_variance)

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x_0)."""
        return (
            _gather(self.posterior_mean_x0, t, x_t) * x0
            + _gather(self.posterior_mean_xt, t, x_t) * x_t
        )

    def sample_timesteps(
        self, batch: int, generator: torch.Generator, device: torch.device
    ) -> torch.Tensor:
        """Stratified timesteps, one per slice of the sampling distribution's quantiles,
        shuffled: lower loss variance. Uniform over [0, T), or by the loss weights. Drawn on
        the generator's device, so a CUDA generator needs no host-to-device copy."""
        home = generator.device
        offsets = torch.rand(batch, generator=generator, dtype=torch.float64, device=home)
        strata = (torch.arange(batch, dtype=torch.float64, device=home) + offsets) / batch
        if self.timestep_sampling == "uniform":
            t = (strata * self.num_steps).long()
        else:
            t = torch.searchsorted(self._timestep_cdf.to(home), strata, right=True)
        t = t.clamp(max=self.num_steps - 1)
        return t[torch.randperm(batch, generator=generator, device=home)].to(device)

    def training_losses(
        self,
        model: nn.Module,
        x0: torch.Tensor,
        t: torch.Tensor,
        tokens: torch.Tensor,
        noise: torch.Tensor,
        model_inputs: dict[str, torch.Tensor] | None = None,
        self_condition: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Per-sample losses: `loss` (to minimise), `mse` and, with a learned variance, `vlb`.

        `model_inputs` are passed through to the network as keywords (a super-resolution model's
        low-res image), like improved-diffusion's `model_kwargs`. `self_condition` first runs the
        network without gradients and passes its (clipped) x0 estimate as `self_cond`, the
        input a self-conditioned network gets from the previous step when sampling.
        """
        x_t = self.q_sample(x0, t, noise)
        steps = self.timesteps.to(t.device)[t].float()
        model_inputs = dict(model_inputs or {})
        if self_condition:
            with torch.no_grad():
                draft = model(x_t, steps, tokens, **model_inputs)
            model_inputs["self_cond"] = self.interpret(draft.float(), x_t, t).x0
        output = model(x_t, steps, tokens, **model_inputs)
        channels = x0.shape[1]
        mse = (output[:, :channels].float() - self.target(x0, t, noise)).pow(2).mean(dim=(1, 2, 3))
        losses = {"mse": mse, "loss": self.loss_weights(t) * mse}
        if self.learned_variance:
            # The VLB trains only the variance: the mean channels are detached (iDDPM section 3.1).
            frozen = torch.cat([output[:, :channels].detach(), output[:, channels:]], dim=1).float()
            vlb = self._vlb_terms(frozen, x0, x_t, t)
            losses["vlb"] = vlb
            correction = self._density_correction.to(t.device)[t]
            losses["loss"] = losses["loss"] + self.vlb_weight * self.num_steps * correction * vlb
        return losses

    def _vlb_terms(
        self, output: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """L_t in bits per dimension: the posterior KL, or the decoder NLL at t = 0."""
        predicted = self.interpret(output, x_t, t, clip=False)
        true_mean = self.posterior_mean(x0, x_t, t)
        true_log_variance = _gather(self.posterior_log_variance, t, x_t)
        model_mean = self.posterior_mean(predicted.x0, x_t, t)
        kl = normal_kl(true_mean, true_log_variance, model_mean, predicted.log_variance)
        kl = kl.mean(dim=(1, 2, 3)) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * predicted.log_variance)
        nll = nll.mean(dim=(1, 2, 3)) / math.log(2.0)
        return torch.where(t == 0, nll, kl)
