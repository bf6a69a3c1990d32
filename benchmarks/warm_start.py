"""The warm-start experiment: the same super-resolution run from scratch and warm-started.

Reads the two runs' `metrics.jsonl` and their `textimg eval --rerank --sr` summaries, prints a
table with the warm start's ratio against the from-scratch baseline, and draws the loss curves
side by side (`--plot`). The runs themselves are `textimg` commands; docs/training.md lists them.

    python benchmarks/warm_start.py --runs out/sr-scratch out/sr-warm \
        --evals out/eval-scratch/base out/eval-warm/base --plot docs/warm_start.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def losses(run: Path) -> tuple[list[int], list[float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return [r["step"] for r in rows], [r["loss"] for r in rows]


def window_mean(values: list[float], start: int, end: int, steps: list[int]) -> float:
    """Mean loss over logged steps in (start, end]: single logged losses are noisy."""
    chosen = [v for s, v in zip(steps, values, strict=True) if start < s <= end]
    return sum(chosen) / len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs=2, type=Path, metavar=("SCRATCH", "WARM"), required=True)
    parser.add_argument("--evals", nargs=2, type=Path, metavar=("SCRATCH", "WARM"))
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    names = ("from scratch", "warm start")
    curves = [losses(run) for run in args.runs]
    last = min(steps[-1] for steps, _ in curves)
    windows = [(0, 50), (50, 100), (last - 100, last - 50), (last - 50, last)]
    header = " | ".join(f"loss {a + 1}-{b}" for a, b in windows)
    metrics = ("trigram", "cer", "exact")
    extra = " | " + " | ".join(f"SR pick {m}" for m in metrics) if args.evals else ""
    print(f"| run | {header}{extra} |")
    print("|---" * (1 + len(windows) + (len(metrics) if args.evals else 0)) + "|")
    values = []
    for index, (name, (steps, loss)) in enumerate(zip(names, curves, strict=True)):
        row = [window_mean(loss, a, b, steps) for a, b in windows]
        if args.evals:
            summary = json.loads((args.evals[index] / "summary.json").read_text())
            row += [summary["rerank"][m]["mean"] for m in metrics]
        values.append(row)
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    ratios = [w / s if s else float("nan") for s, w in zip(*values, strict=True)]
    print("| warm / scratch | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 3.5))
        for name, (steps, loss) in zip(names, curves, strict=True):
            axis.plot(steps, loss, linewidth=0.9, label=name)
        axis.set(xlabel="step", ylabel="training loss", yscale="log",
                 title="tiny-sr 32->64 px: from scratch vs warm start")  # fmt: skip
        axis.legend()
        figure.tight_layout()
        figure.savefig(args.plot, dpi=80)
        plt.close(figure)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
