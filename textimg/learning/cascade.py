"""The post's cascade end to end on a CPU: base -> warm-started super-resolution -> rerank.

nostalgebraist (2022), "embiggening" and "rejection sampling": a base model writes small images,
a super-resolution model whose middle is the trained base (the sandwich) writes them again at
twice the size, and the seven-step workflow picks among several candidates by OCR. Here, at 32 and
64 px:

1. train the base task's recipe on its corpus (`chain.render`, `chain.train_segments`);
2. render the same training texts at the super-resolution size with the same seed (so the same
   string and font per sample, font sizes scaled with the image) and warm-start the
   super-resolution recipe from the base on degraded pairs of that corpus (`textimg.train`);
3. through `textimg eval` (`textimg.eval.evaluate.evaluate`, the function the command runs):
   the base alone, the cascade (every sample upsampled) and the cascade with `--rerank` (K
   samples read, pruned, survivors tiled to the SR count, upsampled, read again, best kept);
4. the super-resolution model alone on clean renderings at the base size, read at its own size:
   what the second stage keeps or loses apart from the base.

Every score sits beside chance (a derangement of the prompts) and the clean-rendering ceiling at
its size, as in `textimg.learning.chain`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from textimg.errors import TextimgError
from textimg.eval import heldout
from textimg.files import write_text_atomic
from textimg.learning.chain import Log, read_training_log, render, train_segments
from textimg.learning.chain import _Clock as Clock  # the chain's stage timer, shared
from textimg.learning.task import CASCADE_BASE, Task, TaskTexts, write_texts


@dataclass(frozen=True)
class Cascade:
    """A cascade run: the base task, the super-resolution recipe, and how the seven steps sample."""

    base: Task  # texts, fonts, sizes, base recipe and base sampling (sampler, steps, guidance)
    sr_recipe: str = "cascade-sr"
    sr_train_images: int = 30_000
    sr_steps: int | None = None  # None: the SR recipe's
    sr_overrides: tuple[str, ...] = ()
    samples: int = 4  # K base samples per prompt for rerank (the post's blog-era 4)
    sr_count: int = 4  # upsampled slots per prompt (survivors tiled up to it)
    sr_sample_steps: int = 25
    sr_guidance: float = 1.0  # the post upsampled without guidance
    sheet_prompts: int = 16

    def sr_task(self) -> Task:
        """The base task rendered at the super-resolution size: same texts, seed and fonts, font
        sizes scaled with the image, trained with the super-resolution recipe."""
        sr = dataclasses.replace(self.base, recipe=self.sr_recipe, steps=self.sr_steps,
                                 overrides=self.sr_overrides,
                                 train_images=self.sr_train_images)  # fmt: skip
        scale, rest = divmod(sr.image_size(), self.base.image_size())
        if rest or scale < 2:
            raise TextimgError(
                f"{self.sr_recipe} makes {sr.image_size()} px images: not a multiple of the "
                f"base's {self.base.image_size()} px"
            )
        return dataclasses.replace(
            sr, min_font_px=self.base.min_font_px * scale, max_font_px=self.base.max_font_px * scale
        )


def run_cascade(cascade: Cascade, out: Path, log: Log = print, threads: int = 1,
                sheet: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Train both stages, run the seven steps on the held-out prompts, score every stage beside
    its chance and ceiling, write `out/result.json` and the 32/64 px sheet (default
    `out/sheet.png`); returns the result. Stopped part way, it resumes on the same `out`; a
    finished run is refused."""
    import torch

    out = Path(out)
    if (out / "result.json").exists():
        finished = out / "result.json"
        raise TextimgError(f"{out} holds a finished run ({finished}); choose another --out")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_stages(cascade, out, log, threads, sheet or out / "sheet.png")
    finally:
        torch.set_num_threads(previous)


def _run_stages(cascade: Cascade, out: Path, log: Log, threads: int, sheet: Path) -> dict[str, Any]:
    """`run_cascade`'s stages, timed."""
    from textimg.eval.ocr import OcrSettings, default_cache_path, make_engine, open_cache

    base, sr = cascade.base, cascade.sr_task()
    stages = Clock(log)
    texts = write_texts(base, out / "texts")
    log(f"{len(set(texts.train))} training strings, {len(texts.prompts)} held-out prompts")
    base_ckpt, sr_ckpt = out / "base" / "checkpoint.pt", out / "sr" / "checkpoint.pt"
    render(base, texts.train, texts.train_file, texts.fonts_file, base.train_images, base.seed,
           out / "corpus-base")  # fmt: skip
    render(sr, texts.train, texts.train_file, texts.fonts_file, sr.train_images, base.seed,
           out / "corpus-sr")  # fmt: skip
    stages.stage("synth")
    train_segments(base, out / "corpus-base", base_ckpt.parent)
    stages.stage("train base")
    train_segments(sr, out / "corpus-sr", sr_ckpt.parent, init_from=base_ckpt)
    stages.stage("train super-resolution")

    engine = make_engine(OcrSettings(upscale=base.upscale), open_cache(default_cache_path()))
    evals = {
        "base": _eval(cascade, texts, base_ckpt, out / "eval" / "base", engine),
        "cascade": _eval(cascade, texts, base_ckpt, out / "eval" / "cascade", engine, sr_ckpt),
        "rerank": _eval(cascade, texts, base_ckpt, out / "eval" / "rerank", engine, sr_ckpt, True),
    }
    stages.stage("seven steps")
    scores = _scores(cascade, texts, out, evals, engine)
    sr_alone = _upsample_clean(cascade, out / "clean-base", sr_ckpt, out / "sr-alone")
    scores["super-resolution alone on clean renderings, 64 px"] = heldout.score_entry(
        _score(sr_alone, sr_alone / "prompts.jsonl", out / "scores" / "sr-alone", engine)
    )
    stages.stage("chance, ceilings and SR alone")
    write_cascade_sheet(out / "eval", texts.prompts[: cascade.sheet_prompts], sheet)
    result = _result(cascade, out, threads, evals, scores, sheet, stages)
    write_text_atomic(out / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def _eval(cascade: Cascade, texts: TaskTexts, checkpoint: Path, out: Path, engine: Any,
          sr: Path | None = None, rerank: bool = False) -> dict[str, Any]:  # fmt: skip
    """`textimg eval CHECKPOINT --prompts PROMPTS --out OUT [--sr SR [--rerank]]` with the
    task's sampling; one sample a prompt unless reranking (then K); returns its summary."""
    from textimg.eval.evaluate import EvalSettings, SamplingSettings, check_inputs, evaluate

    base = cascade.base
    sampling = SamplingSettings(samples=cascade.samples if rerank else 1,
                                steps=base.sample_steps, guidance=base.guidance[-1],
                                seed=base.seed, sampler=base.sampler)  # fmt: skip
    settings = EvalSettings(sampling=sampling, rerank=rerank, super_resolution=sr,
                            sr_count=cascade.sr_count if rerank else None,
                            sr_steps=cascade.sr_sample_steps, sr_guidance=cascade.sr_guidance,
                            overwrite=True)  # fmt: skip
    check_inputs([checkpoint], texts.prompts_file, out, sr)
    evaluate([checkpoint], texts.prompts_file, out, engine, settings)
    return json.loads((out / checkpoint.parent.name / "summary.json").read_text())


def _score(images: Path, prompts: Path | None, out: Path, engine: Any) -> dict[str, Any]:
    """`textimg score IMAGES [--prompts PROMPTS] --out OUT`; resumes over an earlier try."""
    from textimg.eval.scoring import score

    return score(images, prompts, out, engine, overwrite=True)


def _scores(cascade: Cascade, texts: TaskTexts, out: Path, evals: dict[str, dict[str, Any]],
            engine: Any) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each stage's entry beside chance and the clean ceiling at its size."""
    base, sr = cascade.base, cascade.sr_task()
    scores: dict[str, dict[str, Any]] = {}
    sizes = {"base": (base, "clean-base"), "cascade": (sr, "clean-sr")}
    for stage, (task, clean) in sizes.items():
        px = f"{task.image_size()} px"
        label = "base alone" if stage == "base" else "cascade, plain"
        scores[f"{label}, {px}"] = heldout.score_entry(evals[stage])
        samples = out / "eval" / stage / "base"
        chance = _score(samples, texts.shuffled_file, out / "scores" / f"shuffled-{stage}", engine)
        scores[f"shuffled prompts, {px} (chance)"] = heldout.score_entry(chance)
        render(task, texts.prompts, texts.heldout_file, texts.fonts_file,
               base.heldout * base.ceiling_renders, base.seed + 1000, out / clean)  # fmt: skip
        ceiling = _score(out / clean, None, out / "scores" / clean, engine)
        scores[f"clean renderings, {px} (ceiling)"] = heldout.score_entry(ceiling)
        if stage == "base":
            scores[f"base, all {cascade.samples} rerank candidates, {px}"] = heldout.score_entry(
                evals["rerank"]
            )
    rerank = heldout.score_entry(evals["rerank"]["rerank"])
    scores[f"cascade, rerank of {cascade.samples}, {sr.image_size()} px"] = rerank
    return scores


def _upsample_clean(cascade: Cascade, clean: Path, sr_ckpt: Path, folder: Path) -> Path:
    """The super-resolution model alone: the first `heldout` clean base-size renderings, each
    upsampled with its own text as `sample --sr` and `eval --sr` do (`Upsampler`), saved as
    `folder/KEY.png` beside `prompts.jsonl` for `textimg score`."""
    import numpy as np
    from PIL import Image

    from textimg.eval.scoring import shard_items
    from textimg.upsampler import Upsampler

    items = list(islice(shard_items(clean, None), cascade.base.heldout))
    upsampler = Upsampler(sr_ckpt, "cpu", cascade.sr_sample_steps, cascade.sr_guidance,
                          cascade.base.sampler)  # fmt: skip
    low = np.stack([np.asarray(item.image.convert(upsampler.mode)) for item in items])
    high = upsampler.arrays(low[..., None] if low.ndim == 3 else low,
                            [item.prompt or "" for item in items], cascade.base.seed)  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    for item, array in zip(items, high, strict=True):
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(
            folder / f"{item.key}.png"
        )
    heldout.write_prompts_file([i.key for i in items], [i.prompt or "" for i in items],
                               folder / "prompts.jsonl")  # fmt: skip
    return folder


def write_cascade_sheet(evals: Path, prompts: list[str], path: Path, cell: int = 96) -> Path:
    """One row per prompt: the base's 32 px sample, the plain cascade's 64 px upsampling of that
    very sample, and the reranked 64 px pick, each captioned with what OCR read."""
    import pandas as pd
    from PIL import Image

    from textimg.images import contact_sheet

    columns = (("base", "base"), ("cascade", "plain"), ("rerank", "rerank"))
    tables = {
        name: pd.read_csv(evals / name / "base" / "results.csv", dtype=str, keep_default_na=False)
        for name, _ in columns
    }
    rerank = tables["rerank"]
    picks = rerank[rerank["chosen"].str.lower() == "true"].set_index("prompt")
    items = []
    for prompt in prompts:
        for name, label in columns:
            rows = tables[name]
            if name == "rerank":
                if prompt not in picks.index:
                    continue
                row = picks.loc[prompt]
                image, read = row["sr_image"], row["sr_transcript"]
            else:
                row = rows[rows["prompt"] == prompt].iloc[0]
                image, read = row["image"], row["transcript"]
            picture = Image.open(evals / name / "base" / image)
            caption = f"{prompt} {label} {picture.width}px\nOCR: {read}"
            items.append((picture.resize((cell, cell), Image.NEAREST), caption))
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(items, columns=6, cell=cell).save(path, optimize=True)
    return path


def _result(cascade: Cascade, out: Path, threads: int, evals: dict[str, dict[str, Any]],
            scores: dict[str, dict[str, Any]], sheet: Path,
            stages: Clock) -> dict[str, Any]:  # fmt: skip
    """What the run measured and where it wrote it, for `result.json`."""
    import os

    total = stages.total()
    training = {}
    for stage in ("base", "sr"):
        log = read_training_log(out / stage)
        if log is None:
            raise TextimgError(f"{out / stage} has no training log (metrics.jsonl)")
        training[stage] = {"steps": log.steps, "loss": round(log.loss, 5),
                           "images_per_s": round(log.images_per_s, 1)}  # fmt: skip
    return {
        "settings": {**asdict(cascade), "sr": asdict(cascade.sr_task())},
        "training": training,
        "threads": threads,
        "ocr": evals["base"]["ocr"],
        "super_resolution": evals["rerank"]["super_resolution"],
        "scores": scores,
        "bar": cascade_bar(scores, total / 60),
        "seconds": stages.seconds,
        "total_seconds": total,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sheet": str(sheet),
        "paths": {name: str(out / name) for name in
                  ("texts", "base", "sr", "eval", "clean-base", "clean-sr", "sr-alone", "scores")},
    }  # fmt: skip


def scores_by_size(scores: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The scores grouped by the size they were read at ("32 px": {...}), so that each group's
    exact/ceiling ratio divides by the ceiling of its own size (`heldout.score_table`)."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for name, entry in scores.items():
        size = re.search(r"\d+ px", name)
        groups.setdefault(size.group() if size else "", {})[name] = entry
    return groups


def _exact(scores: dict[str, dict[str, Any]], start: str) -> float:
    return next(s["exact"]["mean"] for name, s in scores.items() if name.startswith(start))


def cascade_bar(scores: dict[str, dict[str, Any]], minutes: float | None = None) -> dict[str, Any]:
    """The cascade's three checks (and the hour, given `minutes`), each a sentence and a verdict."""
    base, plain = _exact(scores, "base alone"), _exact(scores, "cascade, plain")
    rerank, alone = _exact(scores, "cascade, rerank"), _exact(scores, "super-resolution alone")
    ceiling = _exact(scores, f"clean renderings, {_size(scores, 'cascade, plain')}")
    checks = {
        "cascade keeps the base's writing": (
            f"plain cascade exact {plain:.3f} >= 0.9 x base {base:.3f}", plain >= 0.9 * base),
        "rerank helps": (f"rerank exact {rerank:.3f} >= plain {plain:.3f}", rerank >= plain),
        "super-resolution keeps clean text": (
            f"SR alone exact {alone:.3f} >= 0.95 x ceiling {ceiling:.3f}", alone >= 0.95 * ceiling),
    }  # fmt: skip
    if minutes is not None:
        checks["within the hour"] = (f"{minutes:.1f} min <= 60", minutes <= 60)
    return {name: {"check": text, "passed": bool(ok)} for name, (text, ok) in checks.items()}


def _size(scores: dict[str, dict[str, Any]], start: str) -> str:
    """The "N px" of the first score named `start`."""
    name = next(name for name in scores if name.startswith(start))
    return name.rsplit(", ", 1)[1]


CASCADE = Cascade(base=CASCADE_BASE)
"""`benchmarks/learns_to_write.py --task cascade`: base 2,800 steps (10.2 min at 78 img/s),
super-resolution 1,400 steps (10.3 min at 38 img/s), 33 minutes on 2 CPU cores all told."""
