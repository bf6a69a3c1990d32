"""Attention cost of weave vs GLIDE-style text conditioning at 64, 128 and 256 px, measured.

The post's argument for weave attention: GLIDE appends the transcript to the image's own
self-attention, whose score matrix is (res^2 + text_len)^2 per head in the plain formulation,
while weave's two cross-attentions score text_len x res^2 each. This times one forward pass of
each layer at full resolution (batch 1, 384-token transcript, `base` recipe text width 512 and
head sizes) and reports the peak memory it added, beside the analytic score-matrix sizes:

- weave: `WeaveAttention` (image->text, text feed-forward, text->image), 2 x L x P scores/head
- glide: `SelfAttention` with the text as extra keys/values, P x (P + L) scores/head

(P = res^2 pixels, L = text tokens.) Each case runs in its own subprocess so its peak memory is
its own: CPU peak RSS above the RSS before the call, or `torch.cuda.max_memory_allocated`.
PyTorch's SDPA may use a fused (flash / memory-efficient) kernel that never stores the score
matrix, so the measured memory can sit far below the analytic size; the time cannot.

    OMP_NUM_THREADS=2 /work/venv/bin/python benchmarks/attention.py
    /work/venv/bin/python benchmarks/attention.py --device cuda --repeats 10
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

TEXT_TOKENS = 384
TEXT_DIM = 512  # base recipes: text_dim
CROSS_HEAD = 128  # cross_attention_head_channels
SELF_HEAD = 64  # head_channels
CHANNELS = 128  # U-Net width at the measured level (base64's outer level)


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(kind: str, resolution: int, repeats: int, device: str) -> dict:
    """Forward time and added peak memory of one conditioning layer; runs in a subprocess."""
    from textimg.model.layers import Conditioning
    from textimg.model.unet import SelfAttention
    from textimg.model.weave import AxialPositionEmbedding, WeaveAttention

    torch.manual_seed(0)
    emb = 4 * CHANNELS
    if kind == "weave":
        layer = WeaveAttention(CHANNELS, emb, TEXT_DIM, CROSS_HEAD, ff_mult=2)
        positions = {resolution: AxialPositionEmbedding(2 * CHANNELS, resolution)().detach()}
    else:
        layer = SelfAttention(CHANNELS, SELF_HEAD, 32, text_dim=TEXT_DIM)
        positions = {}
    layer = layer.to(device).eval()
    cond = Conditioning(
        emb=torch.randn(1, emb, device=device),
        text=torch.randn(1, TEXT_TOKENS, TEXT_DIM, device=device),
        text_mask=torch.ones(1, TEXT_TOKENS, dtype=torch.bool, device=device),
        positions={k: v.to(device) for k, v in positions.items()},
    )
    x = torch.randn(1, CHANNELS, resolution, resolution, device=device)
    cuda = device == "cuda"
    with torch.no_grad():
        layer(x, cond)  # warm-up
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated() / 2**20
        else:
            before = current_rss_mb()
        start = time.perf_counter()
        for _ in range(repeats):
            layer(x, cond)
        if cuda:
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / repeats
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {"ms": 1000 * seconds, "added_mb": max(0.0, peak - before)}


def analytic(kind: str, resolution: int) -> tuple[int, float]:
    """Score-matrix elements per head and their fp32 MB over all heads, unfused."""
    pixels = resolution**2
    if kind == "weave":
        elements, heads = 2 * TEXT_TOKENS * pixels, TEXT_DIM // CROSS_HEAD
    else:
        elements, heads = pixels * (pixels + TEXT_TOKENS), CHANNELS // SELF_HEAD
    return elements, elements * heads * 4 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600, help="Seconds per case.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "RES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, resolution = args.one[0], int(args.one[1])
        print(json.dumps(measure(kind, resolution, args.repeats, args.device)))
        return
    print(
        f"device {args.device}, threads {torch.get_num_threads()}, batch 1, {TEXT_TOKENS} text "
        f"tokens, {CHANNELS} channels, {args.repeats} timed call(s)"
    )
    print(
        "| px | layer | scores/head | unfused scores MB | forward ms | added peak MB "
        "| time x weave | scores x weave |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for resolution in args.resolutions:
        rows = {}
        for kind in ("weave", "glide"):
            command = [sys.executable, __file__, "--one", kind, str(resolution)]
            command += ["--repeats", str(args.repeats), "--device", args.device]
            try:
                output = subprocess.run(command, capture_output=True, text=True, check=True,
                                        timeout=args.timeout)  # fmt: skip
                rows[kind] = json.loads(output.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                rows[kind] = None
            except subprocess.CalledProcessError as error:  # out of memory, most likely
                rows[kind] = {"error": error.stderr.strip().splitlines()[-1][:60]}
        for kind, row in rows.items():
            elements, megabytes = analytic(kind, resolution)
            ratio_scores = elements / analytic("weave", resolution)[0]
            if row is None:
                measured = f"> {args.timeout:.0f} s (timed out) | - | - "
            elif "error" in row:
                measured = f"failed: {row['error']} | - | - "
            else:
                weave = rows["weave"]
                ratio = f"{row['ms'] / weave['ms']:.1f}" if weave and "ms" in weave else "-"
                measured = f"{row['ms']:.1f} | {row['added_mb']:.0f} | {ratio} "
            print(f"| {resolution} | {kind} | {elements:.3g} | {megabytes:.0f} | {measured}"
                  f"| {ratio_scores:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
