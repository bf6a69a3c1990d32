"""The cascade chain at toy size, end to end: both stages trained, the seven steps run through
`textimg eval --sr --rerank`, the super-resolution model scored alone on clean renderings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from tests.test_learns_to_write_cli import load_benchmark
from textimg.learning.cascade import CASCADE, cascade_bar, scores_by_size


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, object]:
    from textimg.learning.cascade import run_cascade

    cascade = load_benchmark().quick_cascade(CASCADE)
    out = tmp_path_factory.mktemp("cascade")
    run_cascade(cascade, out, log=lambda line: None)
    return out, json.loads((out / "result.json").read_text()), cascade


def test_result_reports_every_stage_beside_chance_and_ceiling(toy_run) -> None:
    out, result, cascade = toy_run
    scores = result["scores"]
    assert set(scores_by_size(scores)) == {"32 px", "64 px"}
    for size, group in scores_by_size(scores).items():
        assert any(name.startswith("clean renderings") for name in group), size
        assert any(name.startswith("shuffled prompts") for name in group), size
    for entry in scores.values():
        low, high = entry["exact"]["ci95"]
        assert low <= entry["exact"]["mean"] <= high and entry["n"] > 0
    prompts = cascade.base.heldout
    assert scores["base alone, 32 px"]["n"] == scores["cascade, plain, 64 px"]["n"] == prompts
    assert scores[f"cascade, rerank of {cascade.samples}, 64 px"]["n"] == prompts
    # the super-resolution model alone read every clean low-res rendering it was given
    assert scores["super-resolution alone on clean renderings, 64 px"]["n"] == prompts
    assert result["bar"] == cascade_bar(scores, result["total_seconds"] / 60)
    assert set(result["training"]) == {"base", "sr"}
    assert result["super_resolution"]["applied_to"] == "rerank survivors"
    assert Path(result["sheet"]).is_file()


def test_rerank_picks_one_of_k_candidates_per_prompt(toy_run) -> None:
    out, _, cascade = toy_run
    folder = out / "eval" / "rerank" / "base"
    rows = pd.read_csv(folder / "results.csv", dtype=str, keep_default_na=False)
    for _, group in rows.groupby("key"):
        assert len(group) == cascade.samples
        chosen = group[group["chosen"].str.lower() == "true"]
        assert len(chosen) == 1
        assert Image.open(folder / chosen["sr_image"].iloc[0]).size == (64, 64)


def test_the_cascade_writes_64_px_images_of_the_32_px_samples(toy_run) -> None:
    out, _, _ = toy_run
    sizes = {
        "eval/base/base/*_0.png": 32,
        "eval/cascade/base/*_0.png": 64,
        "eval/rerank/base/*_0.png": 32,  # the candidates; their upsampled pick is KEY_sr.png
        "sr-alone/*.png": 64,
    }
    for pattern, side in sizes.items():
        files = sorted(out.glob(pattern))
        assert files, pattern
        assert {Image.open(f).size for f in files} == {(side, side)}, pattern
