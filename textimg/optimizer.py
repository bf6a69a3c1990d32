"""The optimisation rules, apart from the loop that applies them: AdamW's parameter groups (what
is decayed, what learns at a scaled rate), the learning-rate schedule and the EMA's decay.

The schedule is a function of the step alone (warmup, then a cosine over `decay_steps`, which is
independent of `steps`), so a resumed run, or one given more `--steps`, follows the same curve.
"""

from __future__ import annotations

import math

from torch import nn

from textimg.config import TrainConfig


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup, then cosine decay to `min_lr_ratio * lr` at `decay_steps`, flat after."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(
        1.0, (step - config.warmup_steps) / max(1, config.decay_steps - config.warmup_steps)
    )
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def ema_decay(step: int, config: TrainConfig) -> float:
    """EMA warm-up (k-diffusion's EMAWarmup): early averages forget the random init quickly."""
    return min(config.ema_decay, 1 - (1 + step) ** -config.ema_warmup_power)


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    outer: frozenset[str] = frozenset(),
    outer_lr_scale: float = 1.0,
) -> list[dict]:
    """Weight decay on conv and linear weights only: never on norms, embeddings, biases or gains.

    With `outer_lr_scale != 1` the `outer` parameters (a warm-started super-resolution model's
    fresh bread) get their own groups whose `lr_scale` multiplies the scheduled learning rate.
    """
    decayed = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)}
    params = list(model.named_parameters())
    parts: list[tuple[list[nn.Parameter], dict]] = [([p for _, p in params], {})]
    if outer_lr_scale != 1.0:
        parts = [
            ([p for name, p in params if name not in outer], {"lr_scale": 1.0}),
            ([p for name, p in params if name in outer], {"lr_scale": outer_lr_scale}),
        ]
    return [
        {
            "params": [p for p in chosen if (id(p) in decayed) == decay],
            "weight_decay": weight_decay if decay else 0.0,
        }
        | extra
        for chosen, extra in parts
        for decay in (True, False)
    ]
