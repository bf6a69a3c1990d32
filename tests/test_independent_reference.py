"""benchmarks/independent_reference.py, the textimg-free cross-check, must train and sample.

Its numbers in docs/benchmarks.md are evidence about textimg's own stack, so a broken copy
(a loss that does not fall, samples that are not images) must not sit in the repository.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "independent_reference.py"


def write_corpus(folder: Path, texts: list[str]) -> Path:
    """One tar of 32 px grayscale KEY.png / KEY.txt pairs, as `textimg synth` writes them."""
    folder.mkdir(parents=True)
    with tarfile.open(folder / "synth-000000.tar", "w") as tar:
        for index, text in enumerate(texts):
            image = Image.new("L", (32, 32), 40 + 5 * index % 180)
            ImageDraw.Draw(image).text((4, 10), text, fill=255)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            for suffix, data in ((".png", buffer.getvalue()), (".txt", text.encode())):
                member = tarfile.TarInfo(f"{index:09d}{suffix}")
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    return folder


def run(*args: object) -> None:
    subprocess.run([sys.executable, SCRIPT, *map(str, args)], check=True, capture_output=True)


def test_trains_with_falling_loss_and_samples_every_prompt(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", ["AB", "XYZ", "K7", "Q42"] * 16)
    train = ["--steps", 60, "--every", 30, "--batch-size", 8, "--channels", "8,16,32"]
    run("train", corpus, "--out", tmp_path / "run", *train)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "ema-000030.pt",
        "ema-000060.pt",
    ]
    state = torch.load(tmp_path / "run" / "ema-000060.pt")
    assert tuple(state["channels"]) == (8, 16, 32)  # sampling rebuilds the same network
    losses = state["loss"]
    assert len(losses) == 60 and np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"key": k, "text": k}) + "\n" for k in ("AB", "Z9")))
    out = tmp_path / "samples"
    run(
        "sample",
        tmp_path / "run" / "ema-000060.pt",
        "--prompts",
        prompts,
        "--out",
        out,
        "--steps",
        4,
    )
    for key in ("AB", "Z9"):
        pixels = np.asarray(Image.open(out / f"{key}.png"))
        assert pixels.shape == (32, 32) and pixels.std() > 0


def test_min_snr_gamma_weights_the_same_first_batch_down(tmp_path: Path) -> None:
    """Same seed, same batch, noise and timesteps: min(SNR, 5) / (SNR + 1) < 1 at every t."""
    corpus = write_corpus(tmp_path / "corpus", ["AB", "XYZ"] * 8)
    first = {}
    for gamma in ("0", "5"):
        out = tmp_path / f"gamma-{gamma}"
        run("train", corpus, "--out", out, "--steps", 1, "--every", 1, "--batch-size", 8,
            "--channels", "8,16,32", "--min-snr-gamma", gamma)  # fmt: skip
        first[gamma] = torch.load(out / "ema-000001.pt")["loss"][0]
    assert 0 < first["5"] < first["0"]
