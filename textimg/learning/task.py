"""What a learn-to-write run renders, trains on and judges: `Task`, its texts and the tasks.

A task is declared, not programmed: its texts, fonts and sizes, the recipe that holds the network
and every training setting, and how the samples are drawn and read. `textimg demo` runs `LETTERS`
(or `DIGITS`); `benchmarks/learns_to_write.py` runs `SHORT_STRINGS`, `SHORT_CENTERED`,
`TWO_LINES` and, as the cascade's base, `CASCADE_BASE`.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

from textimg.errors import TextimgError
from textimg.eval import heldout

ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
BOLD_FONTS = ("DejaVuSans-Bold.ttf", "Roboto-Bold.ttf")


@dataclass(frozen=True)
class Task:
    """One learn-to-write task: what text, how it is rendered, which recipe trains on it, and how
    the samples are drawn and read."""

    name: str
    recipe: str  # recipe name or TOML path: the network, its image size and every training setting
    fonts: tuple[str, ...]  # font list entries (file names), written to `texts/fonts.txt`
    train_images: int
    texts: str = "short"  # "short": 2-3 characters of `alphabet`; "lines": two lines of words
    alphabet: str = ALPHANUMERIC
    short_repeat: int = 12  # 2-character training strings repeated, not drowned by 3-character
    two_share: float = 0.25  # share of held-out prompts with 2 characters (the rest have 3)
    heldout: int = 200
    key_digits: int = 4  # prompt keys p0000...: a prompt's sampling noise is seeded by its key
    min_font_px: int = 9
    max_font_px: int = 15
    max_lines: int = 1
    min_contrast: int = 128
    placement: str = "random"  # `textimg synth --placement`: random | center
    ceiling_renders: int = 5  # clean renderings per held-out prompt; one left the ceiling as
    # noisy as the score it divides (0.710-0.770 over five render seeds), five pin it to +-0.03
    sample_steps: int = 25  # 25 and 50 DDIM steps read back equally (exact 0.180 both, `short`)
    sampler: str = "ddim"  # ddim | ancestral
    guidance: tuple[float, ...] = (1.0, 3.0)  # 1 = no guidance; the last is the headline
    upscale: int = 4  # OCR enlargement (0 = the reader's own choice)
    steps: int | None = None  # training steps, also the lr decay horizon; None = the recipe's
    overrides: tuple[str, ...] = ()  # extra `section.field=value` settings for the recipe
    seed: int = 0  # texts, corpus, ceiling and sampling; also the weights unless train_seed is set
    train_seed: int | None = None  # weights, noise and data order alone: a reseed of one corpus

    def total_steps(self) -> int:
        """The step training ends at: the task's own, else its recipe's."""
        from textimg.config import load_recipe

        return self.steps or load_recipe(self.recipe).train.steps

    def image_size(self) -> int:
        """The side of the images the recipe trains on, which the corpus is rendered at."""
        from textimg.config import apply_overrides, load_recipe

        return apply_overrides(load_recipe(self.recipe), list(self.overrides)).model.image_size


DIGITS = Task(
    name="digits",
    recipe="demo",
    fonts=BOLD_FONTS,
    train_images=20_000,
    alphabet="0123456789",
    short_repeat=4,  # ~1/4 of draws
    heldout=64,
    key_digits=3,
    min_font_px=8,
    max_font_px=10,  # three bold digits of 10 px fill a 24 px image; larger ones get cut
    placement="center",
    ceiling_renders=2,
    sampler="ancestral",
    guidance=(5.0,),
    upscale=0,
)
"""`textimg demo --task digits`: 2-3 digit strings in the middle of a 24 px image, in ~5 minutes
on 2 CPU cores all told."""

LETTERS = dataclasses.replace(
    DIGITS,
    name="letters",
    fonts=("DejaVuSansMono-Bold.ttf",),  # one cell a letter: each letter always in one place
    alphabet="abcdefghijklmnopqrstuvwxyz",
    short_repeat=0,  # 3-letter strings only, the held-out prompts' length and layout
    two_share=0.0,
    min_font_px=9,  # one size: three letters of 10 px do not fit 24 px, synth cuts the third
    max_font_px=9,
    # at 2,400 steps, guidance 3 reads back 0.953 / 0.906 / 0.969 exact (seeds 0-2) against
    # 0.922 / 0.859 / 0.938 at 5 (docs/experiments.md)
    guidance=(3.0,),
)
"""`textimg demo`: 3-letter lowercase strings in one monospaced bold font at one size, in the
middle of a 24 px image, within 10 minutes on 2 CPU cores all told. Each of the three choices
fixes a letter's place further and brings the onset of writing sooner (docs/experiments.md)."""

SHORT_STRINGS = Task(
    name="short",
    recipe="cpu-proof-short",
    fonts=BOLD_FONTS,
    train_images=30_000,
    # 5 beats 3 once the model writes; ancestral sampling beat DDIM by 0.05-0.11 exact on
    # validation strings at three checkpoints (`--sampler ddim` shows it)
    guidance=(1.0, 5.0),
    sampler="ancestral",
)
"""2-3 character strings at 32 px anywhere in the image: a 1M-param U-Net on 2 CPU cores within
30 minutes all told; bar: exact >= 0.9 x the ceiling."""

SHORT_CENTERED = dataclasses.replace(
    SHORT_STRINGS, name="short-center", placement="center", recipe="cpu-proof-short-center"
)
"""The same texts, fonts, sizes and grays with every string in the middle of its image: no
position to learn."""

CASCADE_BASE = dataclasses.replace(
    LETTERS,
    name="cascade",
    recipe="cascade-base",
    train_images=30_000,
    heldout=200,
    key_digits=4,
    min_font_px=12,  # the letters' 9 px at 24, scaled to 32
    max_font_px=12,
    upscale=4,  # 32 and 64 px read at 128 and 256: one enlargement for both stages
    guidance=(5.0,),  # what the cascade's figures in docs/results.md were measured with
)
"""The cascade's first stage (`textimg.learning.cascade`): the demo's letters at 32 px, trained
for ~10 of the 33 minutes the whole cascade takes on 2 CPU cores."""

TWO_LINES = Task(
    name="lines",
    texts="lines",
    fonts=(*BOLD_FONTS, "OpenSans-Bold.ttf", "Lato-Bold.ttf"),
    recipe="cpu-proof-lines",
    train_images=30_000,
    min_font_px=14,
    max_font_px=22,
    max_lines=2,
    upscale=2,
)
"""The post's first success in miniature: two lines of words at 64 px within 60 minutes all told;
bar: trigram CI above the shuffled-prompt CI."""


def _short_words() -> list[str]:
    from textimg.data.texts import english_vocabulary

    words, _ = english_vocabulary()
    return [w for w in words[:3000] if w.isalpha() and 2 <= len(w) <= 5]


def _cased(word: str, rng: random.Random) -> str:
    style = rng.randrange(3)
    return word if style == 0 else word.capitalize() if style == 1 else word.upper()


def split_texts(task: Task) -> tuple[list[str], list[str]]:
    """(training texts, held-out prompts); no held-out prompt is ever a training text.

    Short strings: every 2-3 character string over the task's alphabet, the 2-character ones
    repeated `short_repeat` times (`textimg.eval.heldout.split_strings`). Lines: "word\\nword"
    pairs of common 2-5 letter words in lower, Title or UPPER case; the held-out pairs are drawn
    first and never reused, the words themselves are shared.
    """
    if task.texts == "short":
        return heldout.split_strings(
            task.alphabet, task.heldout, task.seed, task.short_repeat, task.two_share
        )
    if task.texts != "lines":
        raise TextimgError(f"unknown task texts {task.texts!r}; choose short or lines")
    rng = random.Random(task.seed)
    words = _short_words()

    def pair() -> str:
        return f"{_cased(rng.choice(words), rng)}\n{_cased(rng.choice(words), rng)}"

    prompts: list[str] = []
    while len(prompts) < task.heldout:
        text = pair()
        if text not in prompts:
            prompts.append(text)
    excluded = set(prompts)
    train: list[str] = []
    while len(train) < 50_000:
        text = pair()
        if text not in excluded:
            train.append(text)
    return train, prompts


@dataclass(frozen=True)
class TaskTexts:
    """A task's texts and the files they are written to, named for the commands that read them."""

    train: list[str]  # drawn from at random for the corpus, repeats included
    prompts: list[str]  # the held-out prompts, never rendered for training
    train_file: Path  # `synth --text-file`: the corpus
    heldout_file: Path  # `synth --text-file`: the clean renderings of the ceiling
    prompts_file: Path  # `eval` and `score --prompts`: each held-out prompt under its key
    shuffled_file: Path  # `score --prompts`: each sample's name with a deranged prompt (chance)
    fonts_file: Path  # `synth --fonts`


def write_texts(task: Task, folder: Path, sample_suffix: str = "_0") -> TaskTexts:
    """Write a task's texts under `folder`. A sample of prompt KEY is named KEY + `sample_suffix`
    (`eval` names the k-th `KEY_k.png`), which is what `shuffled.jsonl` keys its prompts by."""
    folder.mkdir(parents=True, exist_ok=True)
    train, prompts = split_texts(task)
    keys = [f"p{i:0{task.key_digits}d}" for i in range(len(prompts))]
    return TaskTexts(
        train=train,
        prompts=prompts,
        train_file=heldout.write_text_file(train, folder / "train.txt"),
        heldout_file=heldout.write_text_file(prompts, folder / "heldout.txt"),
        prompts_file=heldout.write_prompts_file(keys, prompts, folder / "prompts.jsonl"),
        shuffled_file=heldout.write_prompts_file(
            [k + sample_suffix for k in keys],
            heldout.derangement(prompts, task.seed + 1),
            folder / "shuffled.jsonl",
        ),
        fonts_file=heldout.write_text_file(task.fonts, folder / "fonts.txt"),
    )
