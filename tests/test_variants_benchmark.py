"""benchmarks/variants.py prints one row per variant, the recipe first at 1.00x."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "variants.py"


def test_variants_table_compares_against_the_recipe() -> None:
    command = [sys.executable, str(SCRIPT), "tiny", "model.model_channels=16"]
    result = subprocess.run(
        [*command, "--batch-size", "2", "--steps", "1"], capture_output=True, text=True, check=True
    )
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines()[2:]]
    assert [row[0].strip() for row in rows] == ["tiny", "model.model_channels=16"]
    assert rows[0][5].strip() == "1.00x"
    # The variant really is another model: fewer parameters and FLOPs than the recipe.
    assert float(rows[1][1].strip(" M")) < float(rows[0][1].strip(" M"))
    assert float(rows[1][2]) < float(rows[0][2])
    # The untimed warm-up steps are reported (where torch.compile pays its compile time).
    assert all(float(row[6]) > 0 for row in rows)


def test_variants_train_at_their_own_batch_size() -> None:
    command = [sys.executable, str(SCRIPT), "tiny", "--steps", "1", "train.batch_size=3"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines()[2:]]
    assert [int(row[3]) for row in rows] == [64, 3]  # tiny's own batch, then the override
