"""benchmarks/learns_to_write.py turns its command line into the task it runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "learns_to_write.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("learns_to_write", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_steps_guidance_and_overrides_reach_the_task() -> None:
    bench = load_benchmark()
    task = bench.configured(bench.TASKS["short"], 2000, [1.0, 5.0], ["model.resample=interpolate"])
    assert task.steps == 2000
    assert task.guidance == (1.0, 5.0)
    assert task.overrides[-2:] == ("model.resample=interpolate", "train.decay_steps=2000")
    assert task.overrides[0] == "train.max_minutes=26"  # the 30-minute budget stays
    assert task.sample_steps == bench.TASKS["short"].sample_steps
    short, lines = bench.TASKS["short"], bench.TASKS["lines"]
    assert bench.configured(lines, None, None, [], sample_steps=10).sample_steps == 10
    assert short.sampler == "ancestral"  # chosen on validation strings
    assert bench.configured(short, None, None, [], sampler="ddim").sampler == "ddim"
    more = bench.configured(short, None, None, [], train_images=120_000, sampler=None)
    assert (more.train_images, more.sampler) == (120_000, "ancestral")
    # --train-seed reseeds the weights alone: the texts, corpus and prompts keep the task's seed.
    reseeded = bench.configured(short, None, None, [], train_seed=3)
    assert (reseeded.train_seed, reseeded.seed) == (3, short.seed)
    # Without options the task is the benchmark's own.
    assert bench.configured(bench.TASKS["short"], None, None, []) == bench.TASKS["short"]


def test_the_centred_task_runs_chain_k_settings() -> None:
    """`--task short-center` alone runs session 14's chain K: its overrides name real fields."""
    from textimg.config import apply_overrides, load_recipe

    task = load_benchmark().TASKS["short-center"]
    config = apply_overrides(load_recipe(task.recipe), list(task.overrides))
    assert task.placement == "center" and task.steps == 8200
    assert config.train.decay_steps == task.steps and config.train.max_minutes == 26
    assert config.model.pooled_text and config.model.self_condition
