"""`eval`: sample K images per prompt from checkpoints, score them by OCR, rerank as the post did.

For each checkpoint: sample `samples` images per prompt (`DIR/<name>/<key>_<k>.png`), OCR and
score them through `scoring` (so rows, statuses, summary and report are those of `score`, plus
best-of-K), and with `rerank` run the post's rejection sampling (nostalgebraist.md §2, through
`textimg.eval.rerank`) over the same K samples, so its score sits beside plain sampling on the same
prompts. With a super-resolution checkpoint (the cascade) every sample is upsampled and the
large images are scored, or, with rerank, only the survivors are and the rerank score is that of
the upsampled pick. Several checkpoints give one side-by-side table,
`DIR/compare.csv`.

Every image is a function of (checkpoint, prompt, k, sampling settings): the K samples of a
prompt are seeded by (seed, key) alone, so their noise does not depend on which other prompts
run, on `--limit`, on `--sample-batch` or on how torchrun splits the prompts (prompts share a
network call, `sample_batch` images at a time, each drawing from its own seed; only the last bits
of the network's sums can differ between batch compositions, and rarely a pixel by one level).
That is what lets a restarted run keep every PNG whose embedded metadata matches, and the OCR
cache does the rest: Ctrl-C or SIGTERM stops a run with its finished samples on disk, their
readings in the cache and the rows scored so far in `results.partial.csv`, and the same command
goes on from there.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from textimg.data.shards import sha256_file
from textimg.distributed import Placement, gather_to_main, start_process_group
from textimg.errors import TextimgError, check_choice
from textimg.eval import metrics
from textimg.eval.comparable import check_comparable
from textimg.eval.ocr import OcrEngine
from textimg.eval.rerank import PruneSettings, Upsample, rerank, tile
from textimg.eval.run_identity import EVAL_FILES, eval_run, eval_table_run
from textimg.eval.sample_files import reusable_sample, sample_metadata, save_sample
from textimg.eval.scoring import (
    Item,
    ProgressCallback,
    PromptLine,
    check_prompts_path,
    open_image_for_ocr,
    parse_prompt_lines,
    prompt_reading_counts,
    score_items,
    summarize,
    write_atomic,
    write_results,
)
from textimg.files import check_output_dir
from textimg.interrupt import Interrupted
from textimg.output_owner import claim_folder
from textimg.upsampler import Upsampler, check_cascade_checkpoints

COMPARE_METRICS = ("trigram", "trigram_ci", "cer", "exact")

PARTIAL_RESULTS = "results.partial.csv"
"""The rows an interrupted run scored (one file per torchrun rank); removed once a run finishes."""

SINGLE_PROCESS = Placement()


@dataclass(frozen=True)
class SamplingSettings:
    """How images are drawn; all of it goes into each PNG's metadata and into summary.json."""

    samples: int = 4
    steps: int = 50
    guidance: float = 3.0
    seed: int = 0
    sampler: str = "ddim"

    def __post_init__(self) -> None:
        from textimg.sampling import SAMPLERS

        if self.samples < 1 or self.steps < 1:
            raise TextimgError("--samples and --steps must be at least 1")
        check_choice("sampler", self.sampler, SAMPLERS)


@dataclass(frozen=True)
class EvalSettings:
    """Everything `evaluate` needs besides checkpoints, prompts and OCR engines."""

    sampling: SamplingSettings = SamplingSettings()
    limit: int | None = None
    rerank: bool = False
    prune: PruneSettings = PruneSettings()
    device: str = "cpu"
    super_resolution: Path | None = None  # the cascade: upsamples every sample, or with rerank
    # only the survivors (the post's step 4)
    sr_count: int | None = None  # super-resolution slots per prompt; default K
    sr_steps: int | None = None  # default: sampling.steps
    sr_guidance: float = 1.0  # the original upsampled without guidance
    sample_batch: int = 64  # images per sampling call; batching changes no draw (GroupNoise)
    overwrite: bool = False  # replace another run's results in the output folders


def open_upsampler(settings: EvalSettings) -> Upsampler:
    """The `--sr` checkpoint with the steps, guidance and sampler `eval` upsamples with."""
    assert settings.super_resolution is not None
    sampling = settings.sampling
    steps = settings.sr_steps or sampling.steps
    return Upsampler(
        settings.super_resolution, settings.device, steps, settings.sr_guidance, sampling.sampler
    )


def prompt_seeded(settings: EvalSettings) -> Upsample:
    """The upsampler as rerank's `Upsample`, each call seeded by its prompt, so the upsampled
    candidates of a prompt do not depend on which other prompts run."""
    upsampler = open_upsampler(settings)

    def upsample(images: Sequence[Image.Image], prompt: str) -> list[Image.Image]:
        return upsampler.images(images, prompt, prompt_seed(settings.sampling.seed, prompt))

    return upsample


def describe_super_resolution(settings: EvalSettings) -> dict[str, Any]:
    """What summary.json records about the upsampler and how it was used."""
    assert settings.super_resolution is not None
    described = {
        "path": str(settings.super_resolution),
        "sha256_16": checkpoint_digest(settings.super_resolution),
        "steps": settings.sr_steps or settings.sampling.steps,
        "guidance": settings.sr_guidance,
        "applied_to": "rerank survivors" if settings.rerank else "every sample",
    }
    if settings.rerank:
        described["count"] = settings.sr_count or settings.sampling.samples
    return described


def split_for_rank(lines: Sequence[PromptLine], place: Placement) -> list[PromptLine]:
    """Every `world_size`-th prompt starting at `rank`: shares differ by at most one prompt."""
    return list(lines[place.rank :: place.world_size])


def merge_rank_results(
    parts: Sequence[tuple[list[dict[str, Any]], dict[str, str]]], order: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows and thumbnails of all ranks as one run would have written them: in prompt order."""
    position = {key: index for index, key in enumerate(order)}
    rows = [row for part_rows, _ in parts for row in part_rows]
    rows.sort(key=lambda row: (position.get(row["key"], len(position)), row.get("sample", 0)))
    thumbnails = {
        name: uri for _, part_thumbnails in parts for name, uri in part_thumbnails.items()
    }
    return rows, thumbnails


def checkpoint_names(paths: Sequence[Path]) -> list[str]:
    """Short distinct folder names: `out/tiny/checkpoint.pt` -> `tiny`, else the file stem;
    more parent folders are joined in (`a-tiny`, `b-tiny`) until every name differs."""
    parts = [
        [*p.resolve().parent.parts[1:], *([] if p.stem == "checkpoint" else [p.stem])]
        for p in paths
    ]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["-".join(p[-depth:]) or "checkpoint" for p in parts]
        if len(set(names)) == len(names):
            return names
    return [f"{index}-{name}" for index, name in enumerate(names)]


def checkpoint_digest(path: Path) -> str:
    """The first 16 hex digits of a checkpoint's sha256: samples are reused only for the very
    same weights."""
    return sha256_file(path)[:16]


def prompt_seed(seed: int, key: str) -> int:
    """A 63-bit seed for one prompt's K samples from the run seed and the key alone."""
    return random.Random(f"{seed}-{key}").getrandbits(63)


class CheckpointSampler:
    """Draws (or reuses) the K samples of each prompt of one checkpoint; loads it only if needed.

    With a super-resolution checkpoint and no rerank, each sample is the cascade's output: the
    base image upsampled, so the scores are those of the large images.
    """

    def __init__(self, path: Path, folder: Path, settings: EvalSettings) -> None:
        from textimg.checkpoint import read_checkpoint_config

        self.path, self.folder, self.settings = path, folder, settings
        self.digest = checkpoint_digest(path)
        self.cascade = settings.super_resolution is not None and not settings.rerank
        # A PNG is reused only if made by the very same weights, upsampler included.
        self.identity = self.digest
        if self.cascade:
            upsampler = (checkpoint_digest(settings.super_resolution), settings.sr_steps,
                         settings.sr_guidance)  # fmt: skip
            self.identity += "+sr:" + ":".join(map(str, upsampler))
        self.max_characters = read_checkpoint_config(path).model.context_length - 2
        self._model: tuple[Any, Any] | None = None
        self._upsampler: Upsampler | None = None

    def items(self, lines: Sequence[PromptLine]) -> Iterator[Item]:
        """The scoring items of `lines`, in order; missing samples are drawn `sample_batch`
        images per network call (a prompt's K samples never split across calls)."""
        per_call = max(1, self.settings.sample_batch // self.settings.sampling.samples)
        waiting: list[_PromptPlan] = []  # planned, not yet yielded
        to_draw: list[_PromptPlan] = []
        for line in lines:
            plan = self._plan(line)
            waiting.append(plan)
            if plan.images is None and not plan.error:
                to_draw.append(plan)
            if len(to_draw) == per_call:
                self._draw(to_draw)
                yield from (item for done in waiting for item in done.items())
                waiting, to_draw = [], []
        self._draw(to_draw)
        yield from (item for done in waiting for item in done.items())

    def _plan(self, line: PromptLine) -> _PromptPlan:
        """What one prompt line needs: its paths and metadata, and its reusable samples if any."""
        if line.error:
            return _PromptPlan(line, "", [], [], error=line.error)
        text = line.text or ""
        prompt = text[: self.max_characters]
        k_total = self.settings.sampling.samples
        paths = [self.folder / f"{line.key}_{k}.png" for k in range(k_total)]
        metadata = [
            sample_metadata(self.identity, prompt, k, self.settings.sampling)
            for k in range(k_total)
        ]
        images = [reusable_sample(p, m) for p, m in zip(paths, metadata, strict=True)]
        reused = all(image is not None for image in images)
        return _PromptPlan(line, prompt, paths, metadata, images if reused else None, reused)

    def _draw(self, plans: Sequence[_PromptPlan]) -> None:
        """Sample every plan's images in one call; if that fails, prompt by prompt, so one
        prompt that breaks the sampler marks only itself (`sample_error`), not the run."""
        if not plans:
            return
        try:
            self._sample(plans)
        except Exception as error:
            if len(plans) == 1:
                plans[0].error = f"{type(error).__name__}: {error}"
                return
            for plan in plans:
                try:
                    self._sample([plan])
                except Exception as single:
                    plan.error = f"{type(single).__name__}: {single}"

    def _sample(self, plans: Sequence[_PromptPlan]) -> None:
        from textimg.checkpoint import load_checkpoint
        from textimg.sampling import sample

        if self._model is None:
            model, diffusion, _ = load_checkpoint(self.path, device=self.settings.device)
            self._model = (model, diffusion)
        sampling = self.settings.sampling
        k_total = sampling.samples
        arrays = sample(
            *self._model, [plan.prompt for plan in plans for _ in range(k_total)],
            steps=sampling.steps, guidance=sampling.guidance,
            seed=[prompt_seed(sampling.seed, plan.line.key) for plan in plans],
            sampler=sampling.sampler,
        )  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        for index, plan in enumerate(plans):
            mine = arrays[index * k_total : (index + 1) * k_total]
            if self.cascade:
                self._upsampler = self._upsampler or open_upsampler(self.settings)
                seed = prompt_seed(sampling.seed, plan.prompt)
                mine = self._upsampler.arrays(mine, [plan.prompt] * len(mine), seed)
            plan.images = [
                save_sample(array, path, meta)
                for array, path, meta in zip(mine, plan.paths, plan.metadata, strict=True)
            ]


@dataclass
class _PromptPlan:
    """One prompt line on its way to scoring items: reused or freshly drawn images, or why not."""

    line: PromptLine
    prompt: str
    paths: list[Path]
    metadata: list[str]
    images: list[Image.Image] | None = None
    reused: bool = False
    error: str = ""

    def items(self) -> list[Item]:
        key = self.line.key
        if self.line.error:
            return [Item(key, self.line.text, "", status="bad_prompt_line", error=self.error)]
        extra = {
            "truncated": len(self.line.text or "") > len(self.prompt),
            "prompt_chars": len(self.line.text or ""),
            "reused": self.reused,
        }
        if self.images is None:
            return [
                Item(key, self.prompt, p.name, status="sample_error", error=self.error,
                     extra={"sample": k, **extra})
                for k, p in enumerate(self.paths)
            ]  # fmt: skip
        status = "ok" if self.prompt.strip() else "empty_prompt"
        return [
            Item(key, self.prompt, p.name, image, status, extra={"sample": k, **extra})
            for k, (p, image) in enumerate(zip(self.paths, self.images, strict=True))
        ]


def rerank_rows(
    rows: list[dict[str, Any]],
    folder: Path,
    prune: PruneSettings,
    select: OcrEngine | None,
    upsample: Upsample | None = None,
    engine: OcrEngine | None = None,
    sr_count: int | None = None,
) -> None:
    """Mark each prompt's reranked pick (`chosen`) among its scored samples, in place.

    Selection reads with `select` when given (so the report engine can catch a pick that only
    fools the selector), else reuses the transcripts the rows already hold. Candidates are read
    back from `folder`, so no run holds all its images in memory.

    With `upsample` the survivors are tiled to `sr_count` slots, upsampled, read again, and the
    best upsampled image is saved as `KEY_sr.png`; the chosen base row (the pick's source) gets
    its transcript and metrics, read by the report `engine`, in `sr_*` columns.
    """
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        row["chosen"] = False
        if row["transcript"] is not None and row["status"] in ("ok", "empty_prompt"):
            by_key.setdefault(row["key"], []).append(row)
    for group in by_key.values():
        candidates = [open_image_for_ocr(folder / row["image"]) for row in group]
        known = {id(image): row["transcript"] for image, row in zip(candidates, group, strict=True)}

        def reuse(batch: Sequence[Image.Image], known: dict[int, str] = known) -> list[str]:
            return [known[id(image)] for image in batch]

        read = select.read if select else reuse
        if upsample is None:
            result = rerank(group[0]["prompt"], candidates, read, settings=prune)
            group[result.survivors[result.chosen]]["chosen"] = True
            continue
        assert engine is not None, "an upsampled pick is scored by the report engine"
        prompt = group[0]["prompt"]
        count = sr_count or len(candidates)
        result = rerank(prompt, candidates, read, upsample, count, prune,
                        final_read=(select or engine).read)  # fmt: skip
        source = group[tile(result.survivors, count)[result.chosen]]
        source["chosen"] = True
        name = f"{source['key']}_sr.png"
        write_atomic(folder / name, partial(result.image.save, format="PNG"))
        transcript = engine.read([result.image])[0]
        source |= {"sr_image": name, "sr_transcript": transcript}
        source |= {f"sr_{metric}": value for metric, value in
                   metrics.score_pair(prompt, transcript).items()}  # fmt: skip


def upsampled_picks(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chosen rows as their upsampled picks, so `summarize` scores what the cascade made."""
    picks = []
    for row in rows:
        if row.get("chosen"):
            pick = {**row, "image": row["sr_image"], "transcript": row["sr_transcript"]}
            picks.append(pick | {m: row[f"sr_{m}"] for m in metrics.METRICS})
    return picks


def compare_row(name: str, summary: dict[str, Any]) -> dict[str, Any]:
    """One checkpoint's line of the side-by-side table: plain mean, best of K, reranked pick."""
    row: dict[str, Any] = {"checkpoint": name}
    for metric in COMPARE_METRICS:
        row[metric] = summary[metric]["mean"]
        row[f"best_of_k_{metric}"] = summary.get(f"best_of_k_{metric}", {}).get("mean")
        if "rerank" in summary:
            row[f"rerank_{metric}"] = summary["rerank"][metric]["mean"]
    counts = summary["counts"]
    row |= {"exact_share": summary["exact_share"], "prompts": counts["prompts"]}
    row |= {"samples": counts["samples_per_prompt"], "rows": counts["rows"]}
    row["failed"] = counts["rows"] - counts["scored"]
    return row


def evaluate_checkpoint(
    path: Path,
    name: str,
    lines: Sequence[PromptLine],
    out: Path,
    engine: OcrEngine,
    settings: EvalSettings,
    select: OcrEngine | None = None,
    place: Placement = SINGLE_PROCESS,
    progress: ProgressCallback | None = None,
) -> dict[str, Any] | None:
    """Sample, score and (optionally) rerank one checkpoint; rank 0 writes `out/name/` and gets
    the summary, other ranks get None. `progress` hears of this rank's images as they are
    sampled ("sampling") and read ("reading")."""
    folder = out / name
    mine = split_for_rank(lines, place)
    total = row_count(mine, settings.sampling.samples)
    report = progress or (lambda stage, done, total: None)
    rows: list[dict[str, Any]] = []
    part, error = None, None
    try:
        sampler = CheckpointSampler(path, folder, settings)
        if place.rank == 0:  # before the first sample is written
            claim_folder(folder, eval_run(sampler, lines, engine), EVAL_FILES, settings.overwrite)
        items = _counted(sampler.items(mine), lambda done: report("sampling", done, total))
        # Read each draw as soon as it is made: both bars move, and Ctrl-C keeps scored rows.
        rows, thumbnails = score_items(
            items,
            engine,
            max(settings.sample_batch, settings.sampling.samples),
            progress=lambda done: report("reading", done, total),
            rows=rows,
        )
        if settings.rerank:
            upsample = prompt_seeded(settings) if settings.super_resolution else None
            rerank_rows(rows, folder, settings.prune, select, upsample, engine, settings.sr_count)
        part = (rows, thumbnails)
    except Exception as caught:  # every rank must reach the collective below, failed or not
        error = caught
    except KeyboardInterrupt:
        raise Interrupted(_keep_partial(folder, name, rows, total, place)) from None
    parts = gather_to_main(part, error, place, work="evaluation")
    if place.rank != 0:
        return None
    rows, thumbnails = merge_rank_results(parts, [line.key for line in lines])
    summary = summarize(rows)
    if settings.rerank:
        picks = [row for row in rows if row["chosen"]]
        if settings.super_resolution:
            picks = upsampled_picks(picks)
        summary["rerank"] = summarize(picks)
        summary["rerank"]["prune"] = dataclasses.asdict(settings.prune)
        summary["rerank"]["select_ocr"] = (select or engine).describe()
    if settings.super_resolution:
        summary["super_resolution"] = describe_super_resolution(settings)
    summary["ocr"] = engine.describe()
    summary["checkpoint"] = {"path": str(path), "sha256_16": sampler.digest}
    summary["sampling"] = dataclasses.asdict(settings.sampling)
    summary["counts"]["reused_samples"] = sum(bool(row.get("reused")) for row in rows)
    summary["counts"] |= prompt_reading_counts(rows)
    write_results(folder, rows, thumbnails, summary, kind="eval")
    for stale in folder.glob(PARTIAL_RESULTS.replace(".csv", "*.csv")):
        stale.unlink()
    return summary


def row_count(lines: Sequence[PromptLine], samples: int) -> int:
    """Result rows of these prompt lines: K per prompt, one per line that is not a prompt."""
    return sum(1 if line.error else samples for line in lines)


def _counted(items: Iterator[Item], report: Callable[[int], None]) -> Iterator[Item]:
    """`items` as they are drawn, reporting how many so far (sampling progress)."""
    for done, item in enumerate(items, start=1):
        report(done)
        yield item


def _keep_partial(
    folder: Path, name: str, rows: Sequence[dict[str, Any]], total: int, place: Placement
) -> str:
    """On Ctrl-C or SIGTERM: write the rows scored so far; the line that says what was kept."""
    samples = len(list(folder.glob("*.png"))) if folder.is_dir() else 0
    kept = f"{samples} samples of {name} are in {folder}"
    if rows:
        import pandas as pd

        file_name = PARTIAL_RESULTS
        if place.world_size > 1:
            file_name = file_name.replace(".csv", f".rank{place.rank}.csv")
        frame = pd.DataFrame(list(rows))
        write_atomic(folder / file_name, lambda temporary: frame.to_csv(temporary, index=False))
        kept += f", {len(rows)} of {total} rows scored in {folder / file_name}"
    return f"{kept}; the same command reuses them"


def check_inputs(
    checkpoints: Sequence[Path],
    prompts: Path | None,
    out: Path,
    super_resolution: Path | None = None,
) -> None:
    """Fail before OCR or models load, let alone minutes of sampling, when a checkpoint or the
    prompts file is missing or unreadable, `--sr` cannot upsample these checkpoints' images, or
    `out` cannot be written: the one check of an eval's inputs, which `evaluate` leaves to its
    caller."""
    from textimg.checkpoint import read_checkpoint_config

    if not checkpoints:
        raise TextimgError("give at least one checkpoint")
    missing = [str(p) for p in checkpoints if not Path(p).is_file()]
    if missing:
        raise TextimgError(f"no checkpoint at {', '.join(missing)}")
    if prompts is None:
        raise TextimgError("give the prompts to sample: --prompts FILE")
    check_prompts_path(Path(prompts))
    for path in checkpoints:
        read_checkpoint_config(path)
    check_cascade_checkpoints(super_resolution, checkpoints)
    check_output_dir(out)


def evaluate(
    checkpoints: Sequence[Path],
    prompts: Path,
    out: Path,
    engine: OcrEngine,
    settings: EvalSettings = EvalSettings(),
    select: OcrEngine | None = None,
    progress: ProgressCallback | None = None,
    allow_mixed: bool = False,
) -> list[dict[str, Any]]:
    """Evaluate every checkpoint on the same prompts; rank 0 writes `out/compare.csv` and gets
    one compare row per checkpoint (other ranks get []), refusing checkpoints scored by different
    readers unless `allow_mixed` (`comparable.check_comparable`). `progress` (rank 0's) counts
    images sampled and read over all checkpoints. The inputs are checked by `check_inputs`,
    which the caller runs first, before it loads the OCR engines.

    Under torchrun the caller's process group is used, or one is started here (NCCL when CUDA is
    available, else gloo) and torn down at the end.
    """
    lines = parse_prompt_lines(prompts)[: settings.limit]
    place = Placement.from_environment()
    started = start_process_group(place, settings.device.startswith("cuda"))
    try:
        table = []
        summaries: dict[str, dict[str, Any]] = {}
        each = row_count(split_for_rank(lines, place), settings.sampling.samples)
        names = checkpoint_names(checkpoints)
        if place.rank == 0:
            run = eval_table_run(names, checkpoints)
            claim_folder(out, run, ["compare.csv"], settings.overwrite)
        for index, (path, name) in enumerate(zip(checkpoints, names, strict=True)):
            overall = None
            if progress is not None and place.rank == 0:

                def overall(stage: str, done: int, _: int | None, before: int = index) -> None:
                    progress(stage, before * each + done, each * len(checkpoints))

            summary = evaluate_checkpoint(
                Path(path), name, lines, out, engine, settings, select, place, overall
            )
            if summary is not None:
                table.append(compare_row(name, summary))
                summaries[name] = summary
        if place.rank == 0:
            check_comparable(summaries, allow_mixed)
            import pandas as pd

            frame = pd.DataFrame(table)
            write_atomic(
                out / "compare.csv", lambda temporary: frame.to_csv(temporary, index=False)
            )
        return table
    finally:
        if started:
            import torch.distributed as dist

            dist.destroy_process_group()


__all__ = [
    "CheckpointSampler",
    "EvalSettings",
    "SamplingSettings",
    "check_inputs",
    "checkpoint_names",
    "compare_row",
    "evaluate",
    "evaluate_checkpoint",
    "merge_rank_results",
    "prompt_seed",
    "rerank_rows",
    "split_for_rank",
    "open_upsampler",
    "prompt_seeded",
    "upsampled_picks",
]
