"""`textimg eval`: sampling + scoring end to end, rerank vs plain, several checkpoints, resume,
bad inputs as statuses, and torchrun's prompt split and rank-0 merge (two gloo processes)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from test_ddp import free_port
from typer.testing import CliRunner

from textimg import sampling
from textimg.checkpoint import save_checkpoint
from textimg.cli import app
from textimg.config import DiffusionConfig, ModelConfig, RunConfig, to_dict
from textimg.distributed import Placement
from textimg.eval import evaluate as ev
from textimg.eval.ocr import OcrEngine, OcrSettings, RapidOcrEngine
from textimg.eval.scoring import PromptLine
from textimg.model import build_model

torch.set_num_threads(1)
runner = CliRunner()

MICRO = ModelConfig(
    image_size=16,
    model_channels=16,
    channel_mult=(1, 2),
    attention_resolutions=(8,),
    text_resolutions=(8,),
    head_channels=16,
    norm_groups=8,
    text_dim=32,
    text_head_channels=16,
    cross_attention_head_channels=16,
    context_length=16,  # 14 characters: the long prompt below is truncated
)
LONG = "a prompt far longer than fourteen characters"
FAST = ["--samples", "2", "--steps", "2", "--guidance", "2"]


def make_checkpoint(path: Path, seed: int) -> Path:
    """An untrained micro model saved as the trainer would: what eval loads is the same."""
    config = RunConfig(model=MICRO, diffusion=DiffusionConfig(prediction="v"))
    torch.manual_seed(seed)
    weights = build_model(config).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"config": to_dict(config), "step": 0, "model": weights, "ema": weights}
    save_checkpoint(path, state | {"optimizer": {}, "data_position": {}})
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[list[Path], Path]:
    root = tmp_path_factory.mktemp("eval")
    checkpoints = [make_checkpoint(root / n / "checkpoint.pt", s) for n, s in (("a", 0), ("b", 1))]
    prompts = root / "prompts.jsonl"
    lines = [json.dumps({"key": "k1", "text": "abcd"}), json.dumps({"key": "empty", "text": ""})]
    lines += [json.dumps({"key": "long", "text": LONG}), "{not json"]
    lines += [json.dumps({"key": "k1", "text": "dup"}), json.dumps({"key": "k2", "text": "Hi"})]
    prompts.write_text("\n".join(lines) + "\n")
    return checkpoints, prompts


class StubEngine(OcrEngine):
    """Reads a prefix of `text` whose length depends on the pixels: samples score differently."""

    name, version = "stub", "1"

    def __init__(self, text: str = "abcd", salt: str = "") -> None:
        super().__init__(OcrSettings())
        self.text, self.salt = text, salt

    def _read(self, images):
        lengths = [
            int(hashlib.sha256(self.salt.encode() + i.tobytes()).hexdigest(), 16) % 5
            for i in images
        ]
        return [self.text[:n] for n in lengths]


def test_eval_cli_end_to_end_then_resume(setup, tmp_path, monkeypatch) -> None:
    checkpoints, prompts = setup
    out = tmp_path / "out"
    args = ["eval", *map(str, checkpoints), "--prompts", str(prompts), "--out", str(out), *FAST]
    args += ["--rerank", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output

    compare = pd.read_csv(out / "compare.csv")
    assert list(compare["checkpoint"]) == ["a", "b"]
    assert {"trigram", "best_of_k_trigram", "rerank_trigram"} <= set(compare.columns)
    for name in ("a", "b"):
        folder = out / name
        assert sorted(p.name for p in folder.glob("*.png")) == [
            f"{key}_{k}.png" for key in ("empty", "k1", "k2", "long") for k in (0, 1)
        ]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["counts"]["status"] == {"ok": 6, "empty_prompt": 2, "bad_prompt_line": 2}
        assert summary["counts"]["samples_per_prompt"] == 2 and "best_of_k_trigram" in summary
        assert summary["rerank"]["counts"]["rows"] == 4  # one pick per sampled prompt
        assert summary["ocr"]["engine"] == "rapidocr" and summary["sampling"]["samples"] == 2
        rows = pd.read_parquet(folder / "results.parquet")
        long = rows[rows["key"] == "long"]
        assert long["truncated"].all() and set(long["prompt"]) == {LONG[:14]}
        assert not rows[rows["key"] == "k1"]["truncated"].astype(bool).any()
        bad = rows[rows["status"] == "bad_prompt_line"]
        assert list(bad["key"]) == ["line-4", "line-5"] and "duplicate" in bad["error"].iloc[1]
        assert (folder / "report.html").stat().st_size > 0

    # Restarted with the same arguments: nothing is sampled and nothing is read again.
    def no_sampling(*args, **kwargs):
        raise AssertionError("a finished sample was drawn again")

    def no_reading(self, images):
        raise AssertionError("a cached image was read again")

    monkeypatch.setattr(sampling, "sample", no_sampling)
    monkeypatch.setattr(RapidOcrEngine, "_read", no_reading)
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    summary = json.loads((out / "a" / "summary.json").read_text())
    assert summary["counts"]["reused_samples"] == 8
    assert pd.read_csv(out / "compare.csv").equals(compare)


def test_rerank_reports_its_pick_beside_plain_sampling(setup, tmp_path) -> None:
    checkpoints, prompts = setup
    settings = ev.EvalSettings(ev.SamplingSettings(samples=4, steps=2), limit=3, rerank=True)
    table = ev.evaluate(checkpoints[:1], prompts, tmp_path, StubEngine(), settings)
    (row,) = table
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    # Without SR the pick is the best base sample, so with one engine rerank == best of K.
    assert row["rerank_trigram"] == pytest.approx(row["best_of_k_trigram"])
    assert row["rerank_trigram"] > row["trigram"]
    rows = pd.read_parquet(tmp_path / "a" / "results.parquet")
    assert rows.groupby("key")["chosen"].sum().to_dict() == {"empty": 1, "k1": 1, "long": 1}
    assert summary["rerank"]["prune"]["keep_only_if_above"] == 0.95

    # Selecting with another engine and reporting with this one exposes a pick that only
    # pleased the selector: its reported score can only fall.
    other = ev.evaluate(checkpoints[:1], prompts, tmp_path / "x", StubEngine(), settings,
                        select=StubEngine(salt="other"))  # fmt: skip
    assert other[0]["rerank_trigram"] <= row["rerank_trigram"]
    assert other[0]["trigram"] == row["trigram"]


def test_changed_settings_resample_and_sampler_failure_is_a_status(setup, tmp_path) -> None:
    checkpoints, prompts = setup
    base = ev.SamplingSettings(samples=1, steps=2)
    ev.evaluate(checkpoints[:1], prompts, tmp_path, StubEngine(), ev.EvalSettings(base, limit=1))
    changed = ev.EvalSettings(
        ev.SamplingSettings(samples=1, steps=2, guidance=1.0), limit=1, overwrite=True
    )
    ev.evaluate(checkpoints[:1], prompts, tmp_path, StubEngine(), changed)
    rows = pd.read_csv(tmp_path / "a" / "results.csv")
    assert not rows["reused"].any()  # other guidance: the PNG on disk no longer matches

    broken = ev.EvalSettings(base, device="no-such-device", limit=2, overwrite=True)
    ev.evaluate(checkpoints[1:], prompts, tmp_path, StubEngine(), broken)
    rows = pd.read_csv(tmp_path / "b" / "results.csv")
    assert list(rows["status"]) == ["sample_error", "sample_error"]
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["trigram"]["mean"] is None


def test_prompts_share_sampling_calls_and_a_failing_prompt_marks_only_itself(
    setup, tmp_path, monkeypatch
) -> None:
    """All prompts go through one network call; when that call fails, eval retries prompt by
    prompt so the one prompt that breaks the sampler is the only `sample_error`."""
    checkpoints, prompts = setup
    real, calls = sampling.sample, []

    def sample_refusing_hi(model, diffusion, texts, **options):
        calls.append(list(texts))
        if "Hi" in texts:
            raise RuntimeError("this prompt breaks the sampler")
        return real(model, diffusion, texts, **options)

    monkeypatch.setattr(sampling, "sample", sample_refusing_hi)
    settings = ev.EvalSettings(ev.SamplingSettings(samples=2, steps=2))
    ev.evaluate(checkpoints[:1], prompts, tmp_path, StubEngine(), settings)
    batch = ["abcd", "abcd", "", "", LONG[:14], LONG[:14], "Hi", "Hi"]
    assert calls == [batch] + [batch[i : i + 2] for i in range(0, 8, 2)]
    rows = pd.read_csv(tmp_path / "a" / "results.csv", keep_default_na=False)
    status = dict(zip(rows["image"], rows["status"], strict=True))
    assert status["k2_0.png"] == status["k2_1.png"] == "sample_error"
    assert status["k1_0.png"] == status["long_1.png"] == "ok"
    assert status["empty_0.png"] == "empty_prompt"
    assert "breaks the sampler" in rows[rows["key"] == "k2"]["error"].iloc[0]

    calls.clear()
    small = ev.EvalSettings(ev.SamplingSettings(samples=2, steps=2, seed=1), sample_batch=4)
    ev.evaluate(checkpoints[:1], prompts, tmp_path / "small", StubEngine(), small)
    # Two prompts of K = 2 per call; the call with Hi fails and is retried prompt by prompt.
    assert [len(call) for call in calls] == [4, 4, 2, 2]


def test_bad_sr_and_bad_arguments_fail_early(setup, tmp_path) -> None:
    checkpoints, prompts = setup
    base = ["eval", str(checkpoints[0]), "--prompts", str(prompts), "--out", str(tmp_path)]
    result = runner.invoke(app, [*base, "--rerank", "--sr", str(checkpoints[1])])
    assert result.exit_code == 1 and "not a super-resolution model" in " ".join(
        result.output.split()
    )
    result = runner.invoke(app, [*base, "--sampler", "euler"])
    assert result.exit_code == 1 and "sampler must be one of" in result.output
    result = runner.invoke(app, ["eval", str(tmp_path / "none.pt"), *base[2:]])
    assert result.exit_code == 1 and "no checkpoint" in result.output
    assert not list(tmp_path.glob("*/*.png"))


def test_checkpoint_names_are_short_and_distinct(tmp_path) -> None:
    paths = [tmp_path / "x/run/checkpoint.pt", tmp_path / "y/run/checkpoint.pt"]
    assert ev.checkpoint_names(paths) == ["x-run", "y-run"]
    assert ev.checkpoint_names([tmp_path / "m1.pt", tmp_path / "m2.pt"]) == ["m1", "m2"]


def test_split_and_merge_restore_one_process_order() -> None:
    lines = [PromptLine(i, f"p{i}", "t") for i in range(5)]
    shares = [ev.split_for_rank(lines, Placement(rank, 2)) for rank in (0, 1)]
    assert [[line.key for line in share] for share in shares] == [["p0", "p2", "p4"], ["p1", "p3"]]
    parts = [
        ([{"key": line.key, "sample": k} for line in share for k in (1, 0)], {line.key: "x"})
        for share in shares
        for line in share[:1]
    ]
    rows, thumbnails = ev.merge_rank_results(parts, [line.key for line in lines])
    assert [(r["key"], r["sample"]) for r in rows][:4] == [
        ("p0", 0),
        ("p0", 1),
        ("p1", 0),
        ("p1", 1),
    ]
    assert set(thumbnails) == {"p0", "p1"}


def _join_as_rank(rank: int, port: int) -> None:
    """What torchrun would set for rank `rank` of 2 on this machine."""
    torch.set_num_threads(1)
    os.environ |= {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def _run_rank(rank: int, port: int, checkpoint: str, prompts: str, out: str) -> None:
    _join_as_rank(rank, port)
    settings = ev.EvalSettings(ev.SamplingSettings(samples=2, steps=2), rerank=True)
    table = ev.evaluate([Path(checkpoint)], Path(prompts), Path(out), StubEngine(), settings)
    assert bool(table) == (rank == 0)


def test_two_gloo_ranks_write_what_one_process_writes(setup, tmp_path) -> None:
    checkpoints, prompts = setup
    settings = ev.EvalSettings(ev.SamplingSettings(samples=2, steps=2), rerank=True)
    ev.evaluate(checkpoints[:1], prompts, tmp_path / "one", StubEngine(), settings)
    args = (free_port(), str(checkpoints[0]), str(prompts), str(tmp_path / "two"))
    mp.spawn(_run_rank, args=args, nprocs=2, join=True)
    one = pd.read_parquet(tmp_path / "one" / "a" / "results.parquet")
    two = pd.read_parquet(tmp_path / "two" / "a" / "results.parquet")
    pd.testing.assert_frame_equal(one, two)
    for png in (tmp_path / "one" / "a").glob("*.png"):
        assert Image.open(png).tobytes() == Image.open(tmp_path / "two" / "a" / png.name).tobytes()


def _run_rank_where_rank_one_fails(
    rank: int, port: int, checkpoint: str, prompts: str, out: str, errors: Any
) -> None:
    _join_as_rank(rank, port)
    if rank == 1:  # this rank's copy of the checkpoint is unreadable (a flaky mount, say)
        broken = Path(out).parent / "broken.pt"
        broken.write_bytes(b"not a checkpoint")
        checkpoint = str(broken)
    settings = ev.EvalSettings(ev.SamplingSettings(samples=1, steps=2))
    try:
        ev.evaluate([Path(checkpoint)], Path(prompts), Path(out), StubEngine(), settings)
    except Exception as error:
        errors.put((rank, type(error).__name__, str(error)))


def test_one_failing_rank_stops_every_rank_with_its_error(setup, tmp_path) -> None:
    checkpoints, prompts = setup
    errors = mp.get_context("spawn").Queue()
    args = (free_port(), str(checkpoints[0]), str(prompts), str(tmp_path / "out"), errors)
    ranks = mp.start_processes(
        _run_rank_where_rank_one_fails, args=args, nprocs=2, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + 120
    while not ranks.join(timeout=1):
        if time.monotonic() > deadline:  # the bug this guards against: rank 0 waits forever
            for process in ranks.processes:
                process.kill()
            pytest.fail("rank 0 still waiting for the failed rank after 120 s")
    seen = sorted(errors.get(timeout=10) for _ in range(2))
    assert seen[0][:2] == (0, "TextimgError") and "rank 1: " in seen[0][2]
    assert seen[1][0] == 1
    assert not (tmp_path / "out" / "compare.csv").exists()


def test_eval_out_defaults_to_an_eval_folder():
    """`textimg eval ckpt.pt --prompts test_split.jsonl` (the mission's spelling) needs no --out."""
    result = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    out_line = next(line for line in result.output.splitlines() if "--out" in line)
    assert "[default: eval]" in out_line and "[required]" not in out_line


def test_progress_counts_every_image_sampled_and_read(setup, tmp_path) -> None:
    checkpoints, prompts = setup
    calls: list[tuple[str, int, int | None]] = []
    settings = ev.EvalSettings(ev.SamplingSettings(samples=2, steps=2), sample_batch=2)
    ev.evaluate(
        checkpoints,
        prompts,
        tmp_path,
        StubEngine(),
        settings,
        progress=lambda *call: calls.append(call),
    )
    total = 2 * (4 * 2 + 2)  # two checkpoints x (four prompts x 2 samples + two bad lines)
    for stage in ("sampling", "reading"):
        done = [count for name, count, _ in calls if name == stage]
        assert done == sorted(done) and done[-1] == total
        assert {of for name, _, of in calls if name == stage} == {total}
    # Each draw is read as soon as it is made, so reading does not wait for all sampling.
    first_read = next(index for index, call in enumerate(calls) if call[0] == "reading")
    assert any(name == "sampling" for name, _, _ in calls[first_read:])
