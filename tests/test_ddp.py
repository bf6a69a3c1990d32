"""DDP: two gloo CPU processes read different data yet hold the same weights after training."""

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from test_reader import make_shards
from test_train import micro_config

from textimg.data.reader import ShardStream
from textimg.model import build_model
from textimg.train import train


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_rank(rank: int, world_size: int, port: int, data: str, out: str) -> None:
    torch.set_num_threads(1)
    os.environ |= {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    model = train(micro_config(Path(data), steps=3, grad_accum=2), Path(out))
    torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")


def test_two_gloo_ranks_hold_the_same_weights(tmp_path: Path) -> None:
    data = make_shards(tmp_path / "data", "synth", shards=2, per_shard=8)
    config = micro_config(data)
    first = [next(iter(ShardStream(config.data, 16, 1, 4, 0, rank, 2)))["key"] for rank in (0, 1)]
    assert not set(first[0]) & set(first[1])  # the ranks train on different samples

    out = tmp_path / "run"
    mp.spawn(run_rank, args=(2, free_port(), str(data), str(out)), nprocs=2, join=True)
    rank0 = torch.load(out / "rank0.pt")
    rank1 = torch.load(out / "rank1.pt")
    torch.manual_seed(config.train.seed)
    initial = build_model(config).state_dict()
    changed = False
    for name, weight in rank0.items():
        assert torch.equal(weight, rank1[name]), name
        changed |= not torch.equal(weight, initial[name])
    assert changed
    assert (out / "checkpoint.pt").exists()
