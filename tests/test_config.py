"""Config: recipes, typed overrides, round trip through the dict saved with every run."""

from pathlib import Path

import pytest

from textimg.config import RunConfig, apply_overrides, from_dict, load_recipe, to_dict
from textimg.errors import TextimgError


def test_round_trip_through_dict() -> None:
    config = load_recipe("finetune")
    assert from_dict(to_dict(config)) == config
    assert isinstance(to_dict(config)["model"]["channel_mult"], list)


def test_overrides_are_typed() -> None:
    config = apply_overrides(
        RunConfig(),
        ["train.lr=3e-4", "train.steps=7", "model.channel_mult=[1, 2]", "train.device=cpu"],
    )
    assert config.train.lr == 3e-4 and config.train.steps == 7
    assert config.model.channel_mult == (1, 2) and config.train.device == "cpu"
    assert apply_overrides(RunConfig(), ["train.lr=1"]).train.lr == 1.0  # int widens to float
    for bad, message in [
        ("train.steps=1.5", "train.steps must be an integer"),
        ("train.compile=1", "must be true or false"),
        ("model.channel_mult=2", "a list of integers"),
        ("optim.lr=1", "unknown config section"),
        ("lr=1", "section.field=value"),
    ]:
        with pytest.raises(TextimgError, match=message):
            apply_overrides(RunConfig(), [bad])


def test_recipe_file_extends_a_named_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "mine.toml"
    recipe.write_text('extends = "tiny"\n[train]\nsteps = 12\n')
    config = load_recipe(str(recipe))
    assert config.train.steps == 12 and config.model == load_recipe("tiny").model
    loop = tmp_path / "loop.toml"
    loop.write_text(f'extends = "{loop}"\n')
    with pytest.raises(TextimgError, match="recipe loop"):
        load_recipe(str(loop))
