"""benchmarks/learns_to_write.py turns its command line into the task it runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from textimg.config import apply_overrides, load_recipe
from textimg.learning.task import split_texts

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "learns_to_write.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("learns_to_write", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def trained_config(task):
    """The config `textimg train` runs for a task: its recipe plus its overrides."""
    return apply_overrides(load_recipe(task.recipe), list(task.overrides))


def test_steps_guidance_and_overrides_reach_the_task() -> None:
    bench = load_benchmark()
    task = bench.configured(bench.TASKS["short"], 2000, [1.0, 5.0], ["model.pooled_text=true"])
    assert task.steps == task.total_steps() == 2000
    assert task.guidance == (1.0, 5.0)
    assert task.overrides[-2:] == ("model.pooled_text=true", "train.decay_steps=2000")
    assert trained_config(task).train.max_minutes == 26  # the 30-minute budget stays
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
    # Without options the task is the benchmark's own, trained for its recipe's steps.
    assert bench.configured(short, None, None, []) == short
    assert short.total_steps() == load_recipe("cpu-proof-short").train.steps == 4800


def test_the_centred_task_trains_its_recipe() -> None:
    """`--task short-center` alone trains the best centred settings, all held by its recipe."""
    task = load_benchmark().TASKS["short-center"]
    config = trained_config(task)
    assert task.placement == "center" and task.total_steps() == 8200
    assert config.train.decay_steps == 8200 and config.train.max_minutes == 26
    assert config.model.pooled_text and config.model.self_condition
    # everything else is the random-placement recipe's
    short = load_recipe("cpu-proof-short")
    assert config.model.model_channels == short.model.model_channels
    assert config.diffusion == short.diffusion


@pytest.mark.parametrize("name", ["short", "lines"])
def test_heldout_prompts_are_never_training_texts(name: str) -> None:
    task = load_benchmark().TASKS[name]
    train, heldout = split_texts(task)
    assert len(heldout) == task.heldout == len(set(heldout))
    assert not set(train) & set(heldout)
    if task.texts == "short":
        assert all(2 <= len(t) <= 3 and t.isalnum() and t == t.upper() for t in heldout)
    else:
        assert all(t.count("\n") == 1 for t in heldout)
