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
