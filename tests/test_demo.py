"""The learn-to-write chain end to end at smoke size: every stage runs and writes what it says."""

from __future__ import annotations

import json
import math

import pytest

from textimg.demo import (
    CEILING_RENDERS,
    SHORT_STRINGS,
    TWO_LINES,
    derangement,
    run_demo,
    split_texts,
)


@pytest.mark.parametrize("task", [SHORT_STRINGS, TWO_LINES], ids=lambda t: t.name)
def test_heldout_prompts_are_never_training_texts(task):
    train, heldout = split_texts(task)
    assert len(heldout) == task.heldout == len(set(heldout))
    assert not set(train) & set(heldout)
    if task.texts == "short":
        assert all(2 <= len(t) <= 3 and t.isalnum() and t == t.upper() for t in heldout)
    else:
        assert all(t.count("\n") == 1 for t in heldout)


def test_derangement_moves_every_prompt():
    items = [f"p{i}" for i in range(50)]
    shuffled = derangement(items, seed=3)
    assert sorted(shuffled) == sorted(items)
    assert all(a != b for a, b in zip(items, shuffled, strict=True))


def test_demo_runs_the_whole_chain(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTIMG_CACHE_DIR", str(tmp_path / "cache"))
    result = run_demo(
        tmp_path / "demo", steps=4, train_images=64, heldout=4, guidance=(3.0,), threads=1
    )
    for role in ("corpus", "checkpoint", "eval", "clean_renderings", "sheet", "result"):
        assert result.paths[role].exists(), role
    assert result.sheet.stat().st_size > 0
    report = json.loads(result.paths["result"].read_text())
    assert report["steps"] == 4
    # The demo trains its own (patched, faster) model and decays the rate within its steps.
    config = json.loads((result.paths["checkpoint"].parent / "config.json").read_text())
    assert config["model"]["patch_size"] == 2
    assert config["train"]["decay_steps"] == 4
    assert [s["name"] for s in report["stages"]] == [
        "synth", "train_4", "synth_clean", "score_clean", "eval_g3", "score_shuffled_g3",
    ]  # fmt: skip
    evaluation = next(s["command"] for s in report["stages"] if s["name"] == "eval_g3")
    assert evaluation[evaluation.index("--sampler") + 1] == "ancestral"  # the task's sampler
    assert set(report["scores"]) == {
        "clean renderings (ceiling)",
        "own prompts, guidance 3",
        "shuffled prompts, guidance 3 (chance)",
    }
    for condition, scores in report["scores"].items():
        # The ceiling renders every held-out prompt several times over; the model samples once.
        assert scores["n"] == 4 * (CEILING_RENDERS if "ceiling" in condition else 1)
        for metric in ("trigram", "exact"):
            mean, (low, high) = scores[metric]["mean"], scores[metric]["ci95"]
            assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (mean, low, high))
            assert low <= mean <= high
    assert "own prompts, guidance 3" in result.table
