"""The GPU lease's script must work the first time it runs there: its device phase at toy size.

`benchmarks/learns_to_write_gpu.py` is run once per lease, with no time for a second try, so the
prepare and device phases run here on the CPU exactly as they will there (toy model, one-tenth of
a second of training per segment) and the returned files are checked for what `score` reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "learns_to_write_gpu.py"


def test_prepare_and_device_phases_return_a_curve_of_samples(tmp_path: Path) -> None:
    carry, out = tmp_path / "carry", tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TEXTIMG_GPU_WORK": str(tmp_path / "work")}
    subprocess.run([sys.executable, SCRIPT, "prepare", "--carry", carry], check=True, env=env)
    assert len(list((carry / "fonts").glob("*.ttf"))) == 4
    prompts = [json.loads(line) for line in (carry / "prompts.jsonl").read_text().splitlines()]
    assert len(prompts) == 200
    device = [sys.executable, SCRIPT, "device", "--carry", carry, "--out", out, "--toy"]
    device += ["--minutes", "0.004", "--segments", "2", "--images", "200"]
    subprocess.run(device, check=True, env=env, capture_output=True)

    report = json.loads((out / "report.json").read_text())
    assert report["synth"]["returncode"] == 0
    steps = [segment["step"] for segment in report["segments"]]
    assert len(steps) == 2 and 0 < steps[0] < steps[1]
    with tarfile.open(out / "samples.tar") as tar:
        names = [Path(n) for n in tar.getnames() if n.endswith(".png")]
    folders = {n.parent.name for n in names}
    last = f"step-{steps[1]:06d}"
    assert folders == {f"step-{steps[0]:06d}-g3", f"{last}-g3", f"{last}-g1"}
    keys = {p["key"] for p in prompts}
    assert {n.stem for n in names} <= keys and len(names) == 3 * 8
    assert (out / "metrics.jsonl").exists() and (out / "config.json").exists()


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_gpu_check_script_runs_every_section_at_toy_size() -> None:
    """`benchmarks/gpu_check.sh --toy`: the sections a GPU lease runs, on the CPU in seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    result = subprocess.run(
        [BENCHMARKS / "gpu_check.sh", "--toy"], env=env, capture_output=True, text=True
    )
    output = result.stdout
    assert result.returncode == 0 and "section failed" not in output, output + result.stderr
    for section in (
        "textimg vs diffusers",
        "batch sweep, tiny",
        "bf16 vs fp32 loss parity",
        "dry run, tiny",
    ):
        assert f"## {section}" in output
    assert "| tiny | textimg | 1.8 |" in output and "| tiny-sr | textimg | 1.9 |" in output
    assert "| tiny | 4 |" in output  # a sweep row
    assert "| largest batch in 80 GB |" in output
    try:
        import diffusers  # noqa: F401
    except ImportError:
        assert "diffusers is not installed" in output


def test_bf16_training_keeps_the_fp32_loss() -> None:
    """The parity check, shortened: bf16 autocast with bf16 norms trains `tiny` to the loss fp32
    reaches on the same batches, timesteps and noise (the full check runs 300 steps)."""
    command = [sys.executable, BENCHMARKS / "train.py", "--parity", "24", "--batch-size", "8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    assert result["bf16_differs"]
    assert abs(result["bf16_ratio"] - 1) < 0.05
