"""Config: recipes, typed overrides, the rules each setting declares, round trip through the
dict saved with every run."""

import dataclasses
import re
import subprocess
import sys
import typing
from importlib import resources
from pathlib import Path

import pytest
import tomllib

from textimg.config import (
    RETIRED,
    SECTIONS,
    RunConfig,
    RuntimeConfig,
    apply_overrides,
    choices,
    from_dict,
    load_recipe,
    to_dict,
)
from textimg.errors import TextimgError
from textimg.recipe_files import recipe_names


def test_round_trip_through_dict() -> None:
    config = load_recipe("finetune")
    assert from_dict(to_dict(config)) == config
    assert isinstance(to_dict(config)["model"]["channel_mult"], list)


def test_overrides_are_typed() -> None:
    config = apply_overrides(
        RunConfig(),
        [
            "train.lr=3e-4",
            "train.steps=7",
            "model.channel_mult=[1, 2]",
            "runtime.device=cpu",
            "model.image_size=16",
        ],  # two levels, 16 and 8 px, where the attention is
    )
    assert config.train.lr == 3e-4 and config.train.steps == 7
    assert config.model.channel_mult == (1, 2) and config.runtime.device == "cpu"
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


def test_extends_is_read_from_the_recipes_own_folder(tmp_path: Path, monkeypatch) -> None:
    """`extends = "parent.toml"` is the file beside the recipe, from any current folder; a name
    is still the shipped recipe, even where a folder of that name is in the way."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "parent.toml").write_text('extends = "tiny"\n[train]\nsteps = 7\n')
    (tmp_path / "recipes" / "child.toml").write_text('extends = "parent.toml"\n[train]\nlr = 1\n')
    (tmp_path / "elsewhere" / "tiny").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_recipe(str(tmp_path / "recipes" / "child.toml"))
    assert config.train.steps == 7 and config.train.lr == 1.0
    assert config.model == load_recipe("tiny").model


def test_a_folder_named_like_a_recipe_does_not_hide_it(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "mine").write_text("[train]\nsteps = 5\n")
    monkeypatch.chdir(tmp_path)
    assert load_recipe("demo") == load_recipe(
        str(resources.files("textimg") / "recipes" / "demo.toml")
    )
    assert load_recipe("mine").train.steps == 5, "a file by that name is the file"
    with pytest.raises(TextimgError, match="recipe file demo/nothing.toml does not exist"):
        load_recipe("demo/nothing.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"[train]\n# caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 13); save it as UTF-8"),
        (b"extends = 5\n", "extends = 5 must be a recipe name or a TOML file in quotes"),
        (b'extends = "tiny"\nmodel = 3\n', "model = 3 is not a section; write its settings"),
        (b'extends = "nowhere.toml"\n', "nowhere.toml (the extends of "),
    ],
)
def test_a_malformed_recipe_is_one_line_naming_its_file(
    tmp_path: Path, text: bytes, message: str
) -> None:
    recipe = tmp_path / "mine.toml"
    recipe.write_bytes(text)
    with pytest.raises(TextimgError, match=re.escape(message)) as refused:
        load_recipe(str(recipe))
    assert str(recipe) in str(refused.value) and "\n" not in str(refused.value)


def test_a_super_resolution_model_is_held_to_its_own_levels() -> None:
    config = load_recipe("tiny-sr")
    assert apply_overrides(config, ["model.text_resolutions=[64]"]).model.text_resolutions == (64,)
    with pytest.raises(TextimgError, match=re.escape("its levels are [64, 32, 16, 8]")):
        apply_overrides(config, ["model.attention_resolutions=[4]"])


CHOICE_FIELDS = {
    ("model", "image_channels"),
    ("model", "conditioning"),
    ("diffusion", "schedule"),
    ("diffusion", "prediction"),
    ("diffusion", "timestep_sampling"),
    ("runtime", "compile"),
    ("runtime", "memory_format"),
    ("runtime", "device"),
    ("super_resolution", "upsample"),
    ("super_resolution", "downsample"),
}


def scalar_numbers() -> set[tuple[str, str]]:
    """(section, name) of every integer and float setting (lists are checked per entry)."""
    return {
        (section, spec.name)
        for section, cls in SECTIONS.items()
        for spec in dataclasses.fields(cls)
        if typing.get_type_hints(cls)[spec.name] in (int, float)
    }


def recipe_with(tmp_path: Path, section: str, name: str, value: str) -> Path:
    """A recipe file that changes one setting of one whose Min-SNR weights let every
    `timestep_sampling` load."""
    recipe = tmp_path / f"{section}-{name}.toml"
    recipe.write_text(f'extends = "cpu-proof-short"\n[{section}]\n{name} = {value}\n')
    return recipe


def test_every_fixed_set_of_values_is_refused_at_load_naming_the_allowed_ones(
    tmp_path: Path,
) -> None:
    declared = {
        (section, spec.name)
        for section, cls in SECTIONS.items()
        for spec in dataclasses.fields(cls)
        if choices(section, spec.name)
    }
    assert declared == CHOICE_FIELDS
    for section, name in sorted(CHOICE_FIELDS):
        allowed = choices(section, name)
        bad = "2" if name == "image_channels" else '"nonsense"'
        with pytest.raises(TextimgError) as refused:
            load_recipe(str(recipe_with(tmp_path, section, name, bad)))
        assert f"{section}.{name} must be one of {', '.join(allowed)}," in str(refused.value)
        for value in allowed:  # each listed value loads as it is written
            spelled = value if value.isdigit() or value in ("true", "false") else f'"{value}"'
            load_recipe(str(recipe_with(tmp_path, section, name, spelled)))


def test_a_bad_recipe_fails_before_torch_is_even_imported(tmp_path: Path) -> None:
    """Loading is config only: no model is built (nor can be) before the one-line refusal."""
    recipe = recipe_with(tmp_path, "diffusion", "schedule", '"sigmoid"')
    script = (
        "import sys\nfrom textimg.config import load_recipe\nfrom textimg.errors import "
        f"TextimgError\ntry:\n    load_recipe({str(recipe)!r})\nexcept TextimgError as error:\n"
        "    print(error)\nprint('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.splitlines() == [
        "diffusion.schedule must be one of cosine, linear, not 'sigmoid'",
        "False",
    ]


def test_choices_are_listed_from_the_fields_themselves() -> None:
    assert choices("diffusion", "prediction") == ("eps", "v")  # the default first
    assert choices("runtime", "compile") == ("auto", "true", "false")
    assert choices("train", "compile") == choices("runtime", "compile")  # its spelling in train
    assert choices("model", "image_channels") == ("1", "3")
    assert choices("train", "lr") == ()  # any number in its range
    with pytest.raises(TextimgError, match="unknown setting model.colour"):
        choices("model", "colour")
    # A recipe's "true" and true are the same setting.
    assert apply_overrides(RunConfig(), ['train.compile="true"']).runtime.compile is True


# What 0 means for every integer and float setting: allowed (with its meaning, as the field's
# comment says) or refused at load. A new numeric setting must be added to one of the two.
ZERO_ALLOWED = {
    ("model", "dropout"),  # off
    ("diffusion", "text_dropout"),  # no null transcripts, so no guidance
    ("diffusion", "min_snr_gamma"),  # off: the plain MSE
    ("train", "lr"),  # the weights stay as they start
    ("train", "warmup_steps"),  # no warmup
    ("train", "min_lr_ratio"),  # the cosine decays to zero
    ("train", "weight_decay"),  # off
    ("train", "beta1"),  # no momentum
    ("train", "beta2"),  # no second-moment average
    ("train", "grad_clip"),  # no clipping
    ("train", "ema_decay"),  # the EMA weights are the raw weights
    ("train", "seed"),  # a seed like any other
    ("train", "checkpoint_every"),  # only the last step
    ("train", "sample_every"),  # no sample grids
    ("train", "sample_guidance"),  # the unconditional model
    ("train", "max_minutes"),  # no time limit
    ("data", "num_workers"),  # read in the training process
    ("super_resolution", "low_res_size"),  # a base model
    ("super_resolution", "blur_prob"),  # no blur
    ("super_resolution", "sample_noise_step"),  # the least noise
}
ZERO_REFUSED = {
    ("model", "image_size"),
    ("model", "model_channels"),
    ("model", "num_res_blocks"),
    ("model", "head_channels"),
    ("model", "norm_groups"),
    ("model", "text_dim"),
    ("model", "text_depth"),
    ("model", "text_head_channels"),
    ("model", "text_ff_mult"),
    ("model", "context_length"),
    ("model", "max_lines"),
    ("model", "relative_buckets"),
    ("model", "relative_max_distance"),
    ("model", "cross_attention_head_channels"),
    ("model", "weave_ff_mult"),
    ("diffusion", "steps"),
    ("diffusion", "vlb_weight"),
    ("train", "steps"),
    ("train", "batch_size"),
    ("train", "grad_accum"),
    ("train", "decay_steps"),
    ("train", "ema_warmup_power"),
    ("train", "log_every"),
    ("train", "sample_steps"),
    ("data", "shuffle_buffer"),
    ("super_resolution", "noise_max_step"),
    ("super_resolution", "outer_lr_scale"),
}


def test_zero_is_off_or_refused_at_load_for_every_number() -> None:
    numbers = scalar_numbers() - CHOICE_FIELDS
    assert numbers == ZERO_ALLOWED | ZERO_REFUSED
    for section, name in sorted(ZERO_ALLOWED):
        config = apply_overrides(RunConfig(), [f"{section}.{name}=0"])
        assert getattr(getattr(config, section), name) == 0
    for section, name in sorted(ZERO_REFUSED):
        with pytest.raises(TextimgError) as refused:
            apply_overrides(RunConfig(), [f"{section}.{name}=0"])
        assert str(refused.value).startswith(f"{section}.{name} must be ")
        assert "\n" not in str(refused.value)
    for section, name in sorted(numbers):  # and no setting takes a negative number
        if (section, name) != ("train", "seed"):
            with pytest.raises(TextimgError, match=f"{section}.{name}"):
                apply_overrides(RunConfig(), [f"{section}.{name}=-1"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.lr=nan"], "train.lr must be at least 0, not nan"),
        (["train.ema_decay=1"], "train.ema_decay must be at least 0 and below 1, not 1.0"),
        (["super_resolution.blur_prob=1.5"], "blur_prob must be between 0 and 1, not 1.5"),
        (["model.channel_mult=[1, 0]"], "every entry of model.channel_mult must be at least 1"),
        (["super_resolution.blur_sigma=[0, 0.6]"], "every entry of super_resolution.blur_sigma"),
        (["model.channel_mult=[]"], "model.channel_mult must name at least one level"),
        (["model.image_size=30"], "model.image_size 30 must be a multiple of 4"),
        (["model.relative_max_distance=8"], "relative_max_distance must be above"),
        (
            ["model.text_resolutions=[3]"],
            "model.text_resolutions names [3], which this model has no level of; its levels are "
            "[32, 16, 8]",
        ),
        (["model.attention_resolutions=[8, 64]"], "model.attention_resolutions names [64]"),
        (["diffusion.timestep_sampling=importance"], "needs diffusion.min_snr_gamma > 0"),
        (["train.sample_prompts=[]"], "train.sample_prompts is empty"),
        (["diffusion.steps=10"], "train.sample_steps 25 is more than diffusion.steps 10"),
        (
            [
                "super_resolution.low_res_size=16",
                "super_resolution.noise_conditioning=true",
                "super_resolution.noise_max_step=2000",
            ],
            "super_resolution.noise_max_step 2000 is more than diffusion.steps 1000",
        ),
    ],
)
def test_out_of_range_and_inconsistent_settings_are_one_line(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(TextimgError, match=re.escape(message)):
        apply_overrides(RunConfig(), overrides)


def test_settings_that_depend_on_another_load_when_that_one_allows_them() -> None:
    config = apply_overrides(
        RunConfig(),
        [
            "diffusion.min_snr_gamma=5",
            "diffusion.timestep_sampling=importance",
            "train.sample_every=0",
            "train.sample_prompts=[]",
            "diffusion.steps=10",  # no grids to sample, no low-res input to noise
        ],
    )
    assert config.diffusion.timestep_sampling == "importance" and config.diffusion.steps == 10


def test_every_shipped_recipe_loads() -> None:
    for name in recipe_names():
        assert isinstance(load_recipe(name), RunConfig)


def test_a_config_saved_with_retired_settings_at_their_kept_value_still_loads() -> None:
    """Runs and checkpoints saved while these settings existed hold them; their default
    behaviour is what textimg kept, any other value is refused."""
    saved = to_dict(load_recipe("tiny"))
    for setting, value in RETIRED.items():
        section, name = setting.split(".")
        saved[section][name] = value
    assert from_dict(saved) == load_recipe("tiny")
    saved["model"]["patch_size"] = 2
    with pytest.raises(TextimgError, match="model.patch_size was removed .* not 2"):
        from_dict(saved)


def test_run_time_settings_are_not_saved_and_their_train_spellings_still_load() -> None:
    """Where a run ran (device, compiling, layout, optimizer kernel) is not what it is: it stays
    out of config.json and checkpoints, and does not make two configs differ. `--set
    train.compile=false` and configs saved with those settings in [train] still load them."""
    moved = ["train.compile=false", "train.device=cpu", "train.memory_format=contiguous"]
    config = apply_overrides(load_recipe("tiny"), [*moved, "train.fused_optimizer=false"])
    assert config.runtime == RuntimeConfig(
        compile=False, device="cpu", memory_format="contiguous", fused_optimizer=False
    )
    assert "runtime" not in to_dict(config) and config == load_recipe("tiny")
    saved = to_dict(load_recipe("tiny"))
    saved["train"] |= {"compile": "auto", "device": "cuda", "memory_format": "auto"}
    assert from_dict(saved).runtime.device == "cuda" and "device" not in to_dict(from_dict(saved))
    overridden = apply_overrides(config, ["runtime.device=auto"]).runtime
    assert overridden.device == "auto" and overridden.compile is False  # the rest is kept


def test_the_code_behind_a_choice_handles_every_value_it_allows() -> None:
    import torch

    from textimg.super_resolution import downsample

    for mode in choices("super_resolution", "downsample"):
        assert downsample(torch.zeros(1, 1, 8, 8), 4, mode).shape == (1, 1, 4, 4)


def test_no_recipe_line_restates_a_default_or_its_parents_value() -> None:
    """A recipe lists what it changes, so each line is a choice someone made."""
    defaults = to_dict(RunConfig())
    for name in recipe_names():
        data = tomllib.loads((resources.files("textimg") / "recipes" / f"{name}.toml").read_text())
        parent = data.pop("extends", None)
        inherited = to_dict(load_recipe(parent)) if parent else defaults
        for section, values in data.items():
            for key, value in values.items():
                assert inherited[section][key] != value, f"{name}: {section}.{key} = {value}"
