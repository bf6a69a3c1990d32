"""An independent cross-check of textimg's training stack: a plain conditional U-Net, one file.

Why it exists: a plain U-Net with cross-attention to a character transformer is the usual
reference for writing 2-3 character strings at 32 px. Swapping networks inside textimg keeps
textimg's trainer, diffusion, loader and sampler, so a fault in those would hide in every
variant. This script shares **no code with textimg**: its own tar reader (the whole corpus in
memory, epochs of random permutations), network, cosine schedule, v-prediction loss, AdamW loop
with EMA, and DDIM sampler with classifier-free guidance. If it learned much faster per image on
the same corpus, the fault would be in textimg; it does not (docs/benchmarks.md, "textimg vs an
independent plain U-Net").

The network: 16/32/64 channels at 32/16/8 px, one ResBlock per level each way, average-pool down
and nearest-neighbour up, plain cross-attention (zero-initialised output) to the text at 16 and 8
px in the encoder, middle and decoder, a 2-layer pre-norm character transformer with learned
absolute positions and no timestep input: 0.61M parameters.

    python benchmarks/independent_reference.py train CORPUS --out OUT --steps 6000
    python benchmarks/independent_reference.py sample OUT/ema-006000.pt --prompts P --out S
    textimg score S --prompts P --upscale 4 --out SCORES

`train` writes `OUT/ema-NNNNNN.pt` every `--every` steps and logs loss and images/s; `sample`
writes `KEY.png` per prompt for `textimg score` (score it against a derangement of the prompts
for chance, as benchmarks/learns_to_write.py does).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

CONTEXT = 8  # tokens: start, up to 6 characters, end
PAD, START, END = 0, 1, 2
VOCAB = 128


def tokenize(text: str) -> list[int]:
    ids = [START] + [3 + ord(c) % (VOCAB - 3) for c in text][: CONTEXT - 2] + [END]
    return ids + [PAD] * (CONTEXT - len(ids))


def load_corpus(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Every KEY.png / KEY.txt pair of every tar in `folder`: uint8 images and token ids."""
    images, tokens = [], []
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = {member.name: member for member in tar.getmembers()}
            for name in sorted(members):
                if name.endswith(".png"):
                    png = tar.extractfile(members[name]).read()
                    text = tar.extractfile(members[name[:-4] + ".txt"]).read().decode()
                    images.append(np.array(Image.open(io.BytesIO(png)).convert("L")))
                    tokens.append(tokenize(text))
    if not images:
        raise SystemExit(f"no KEY.png/KEY.txt samples in {folder}/*.tar")
    return torch.from_numpy(np.stack(images)), torch.tensor(tokens)


def norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(8, channels)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(emb, c_out)
        self.norm2, self.conv2 = norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(emb)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class CrossAttention(nn.Module):
    def __init__(self, channels: int, text_dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.norm = norm(channels)
        self.q = nn.Linear(channels, text_dim, bias=False)
        self.kv = nn.Linear(text_dim, 2 * text_dim, bias=False)
        self.out = nn.Linear(text_dim, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, text: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.q(self.norm(x).flatten(2).transpose(1, 2))
        k, v = self.kv(text).chunk(2, -1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, -1, self.heads, t.shape[-1] // self.heads).transpose(1, 2)

        o = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), keep[:, None, None, :])
        o = self.out(o.transpose(1, 2).reshape(b, h * w, -1))
        return x + o.transpose(1, 2).reshape(b, c, h, w)


class TextEncoder(nn.Module):
    def __init__(self, dim: int = 64, depth: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, dim)
        self.position = nn.Parameter(torch.randn(CONTEXT, dim) * 0.5)
        layer = nn.TransformerEncoderLayer(
            dim, 2, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = tokens != PAD
        h = self.layers(self.embedding(tokens) + self.position, src_key_padding_mask=~keep)
        return self.norm(h), keep


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    freqs = torch.exp(-math.log(10000) * torch.arange(dim // 2) / (dim // 2))
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


class UNet(nn.Module):
    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), text_dim: int = 64) -> None:
        super().__init__()
        c0, c1, c2 = channels
        emb = 8 * c0
        self.base = c0
        self.time = nn.Sequential(nn.Linear(c0, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.text = TextEncoder(text_dim)
        self.input = nn.Conv2d(1, c0, 3, padding=1)
        self.down = nn.ModuleList(
            [ResBlock(c0, c0, emb), ResBlock(c0, c1, emb), ResBlock(c1, c2, emb)]
        )
        self.down_text = nn.ModuleList(
            [None, CrossAttention(c1, text_dim), CrossAttention(c2, text_dim)]
        )
        self.mid1, self.mid_text = ResBlock(c2, c2, emb), CrossAttention(c2, text_dim)
        self.mid2 = ResBlock(c2, c2, emb)
        self.up = nn.ModuleList(
            [ResBlock(2 * c2, c2, emb), ResBlock(c2 + c1, c1, emb), ResBlock(c1 + c0, c0, emb)]
        )
        self.up_text = nn.ModuleList(
            [CrossAttention(c2, text_dim), CrossAttention(c1, text_dim), None]
        )
        self.out_norm, self.output = norm(c0), nn.Conv2d(c0, 1, 3, padding=1)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        emb = self.time(timestep_embedding(t, self.base))
        text, keep = self.text(tokens)
        h, skips = self.input(x), []
        for level, (block, attend) in enumerate(zip(self.down, self.down_text, strict=True)):
            h = block(F.avg_pool2d(h, 2) if level else h, emb)
            h = attend(h, text, keep) if attend is not None else h
            skips.append(h)
        h = self.mid2(self.mid_text(self.mid1(h, emb), text, keep), emb)
        for level, (block, attend) in enumerate(zip(self.up, self.up_text, strict=True)):
            h = block(torch.cat([h, skips.pop()], 1), emb)
            h = attend(h, text, keep) if attend is not None else h
            if level < len(self.up) - 1:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
        return self.output(F.silu(self.out_norm(h)))


def cosine_alpha_bar(steps: int = 1000, offset: float = 0.008) -> torch.Tensor:
    def f(t: float) -> float:
        return math.cos((t / steps + offset) / (1 + offset) * math.pi / 2) ** 2

    betas = torch.tensor(
        [min(1 - f(i + 1) / f(i), 0.999) for i in range(steps)], dtype=torch.float64
    )
    return torch.cumprod(1 - betas, 0).float()


ALPHA_BAR = cosine_alpha_bar()


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    images, tokens = load_corpus(args.corpus)
    data = images.float().div(127.5).sub(1).unsqueeze(1)
    model, ema = UNet(args.channels), UNet(args.channels)
    ema.load_state_dict(model.state_dict())
    print(f"{len(data)} images, {sum(p.numel() for p in model.parameters()):,} parameters")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    args.out.mkdir(parents=True, exist_ok=True)
    order, cursor, losses, started = torch.randperm(len(data)), 0, [], time.time()
    null = torch.tensor(tokenize(""))
    for step in range(1, args.steps + 1):
        if cursor + args.batch_size > len(data):
            order, cursor = torch.randperm(len(data)), 0
        index = order[cursor : cursor + args.batch_size]
        cursor += args.batch_size
        x0, text = data[index], tokens[index].clone()
        text[torch.rand(len(index)) < 0.1] = null  # classifier-free guidance
        t = torch.randint(0, len(ALPHA_BAR), (len(index),))
        a = ALPHA_BAR[t].sqrt().view(-1, 1, 1, 1)
        s = (1 - ALPHA_BAR[t]).sqrt().view(-1, 1, 1, 1)
        noise = torch.randn_like(x0)
        error = (model(a * x0 + s * noise, t, text) - (a * noise - s * x0)).pow(2)
        weight = torch.ones(len(index))
        if args.min_snr_gamma:  # Min-SNR-gamma for v: min(SNR, gamma) / (SNR + 1)
            snr = ALPHA_BAR[t] / (1 - ALPHA_BAR[t])
            weight = snr.clamp(max=args.min_snr_gamma) / (snr + 1)
        loss = (weight * error.mean(dim=(1, 2, 3))).mean()
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / 100) * decay
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema_decay = min(0.999, 1 - (1 + step) ** -0.75)
        with torch.no_grad():
            for averaged, live in zip(ema.parameters(), model.parameters(), strict=True):
                averaged.lerp_(live, 1 - ema_decay)
        losses.append(loss.item())
        seconds = time.time() - started
        if step % 50 == 0:
            rate = step * args.batch_size / seconds
            recent = np.mean(losses[-50:])
            print(f"step {step} loss {recent:.4f} {rate:.1f} img/s {seconds / 60:.1f} min")
        if step % args.every == 0 or step == args.steps:
            state = {"ema": ema.state_dict(), "channels": args.channels, "step": step}
            state |= {"minutes": seconds / 60, "loss": losses}
            path = args.out / f"ema-{step:06d}.pt"
            torch.save(state, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").rename(path)


@torch.no_grad()
def sample(args: argparse.Namespace) -> None:
    state = torch.load(args.checkpoint)
    model = UNet(tuple(state["channels"]))
    model.load_state_dict(state["ema"])
    model.eval()
    rows = [json.loads(line) for line in args.prompts.read_text().splitlines() if line.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    grid = torch.linspace(0, len(ALPHA_BAR) - 1, args.steps).round().long()
    for start in range(0, len(rows), 50):
        chunk = rows[start : start + 50]
        x = torch.randn(len(chunk), 1, 32, 32, generator=torch.Generator().manual_seed(start))
        text = torch.tensor([tokenize(row["text"]) for row in chunk] + [tokenize("")] * len(chunk))
        for i in reversed(range(args.steps)):
            alpha_bar = ALPHA_BAR[grid[i]]
            previous = ALPHA_BAR[grid[i - 1]] if i else torch.tensor(1.0)
            t = torch.full((2 * len(chunk),), int(grid[i]))
            cond, uncond = model(torch.cat([x, x]), t, text).chunk(2)
            v = uncond + args.guidance * (cond - uncond)
            x0 = (alpha_bar.sqrt() * x - (1 - alpha_bar).sqrt() * v).clamp(-1, 1)
            eps = (x - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()
            x = previous.sqrt() * x0 + (1 - previous).sqrt() * eps
        pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().squeeze(1).numpy()
        for row, image in zip(chunk, pixels, strict=True):
            Image.fromarray(image).save(args.out / f"{row['key']}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    trainer = commands.add_parser("train", help="train on a folder of WebDataset tars")
    trainer.add_argument("corpus", type=Path)
    trainer.add_argument("--out", type=Path, required=True)
    trainer.add_argument("--steps", type=int, default=6000)
    trainer.add_argument("--every", type=int, default=600, help="EMA checkpoint every N steps")
    trainer.add_argument("--batch-size", type=int, default=32)
    trainer.add_argument("--lr", type=float, default=2e-3)
    trainer.add_argument("--seed", type=int, default=0)
    trainer.add_argument(
        "--min-snr-gamma", type=float, default=0.0, help="Min-SNR-gamma loss weights; 0 = plain MSE"
    )
    trainer.add_argument(
        "--channels",
        type=lambda text: tuple(int(c) for c in text.split(",")),
        default=(16, 32, 64),
        help="widths at 32, 16 and 8 px (default 16,32,64: 0.61M parameters)",
    )
    trainer.add_argument("--threads", type=int, default=1)
    sampler = commands.add_parser("sample", help="one DDIM sample per prompt, KEY.png")
    sampler.add_argument("checkpoint", type=Path)
    sampler.add_argument("--prompts", type=Path, required=True, help="JSONL of {key, text}")
    sampler.add_argument("--out", type=Path, required=True)
    sampler.add_argument("--guidance", type=float, default=3.0)
    sampler.add_argument("--steps", type=int, default=50)
    sampler.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    (train if args.command == "train" else sample)(args)


if __name__ == "__main__":
    main()
