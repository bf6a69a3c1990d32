"""Held-out prompts: never trained on, and a chance baseline that moves every prompt."""

from __future__ import annotations

from textimg.eval.heldout import derangement, split_strings


def test_heldout_prompts_are_never_training_texts() -> None:
    train, heldout = split_strings("0123456789", heldout=64, seed=3, short_repeat=4)
    assert len(heldout) == 64 == len(set(heldout))
    assert not set(train) & set(heldout)
    assert sum(len(t) == 2 for t in heldout) == 16
    assert all(t.isdigit() and 2 <= len(t) <= 3 for t in heldout)
    # every other string is trained on, the 2-digit ones four times
    assert len(set(train)) == 100 + 1000 - 64
    assert train.count(next(t for t in train if len(t) == 2)) == 4


def test_derangement_moves_every_prompt() -> None:
    items = [f"p{i}" for i in range(50)]
    shuffled = derangement(items, seed=3)
    assert sorted(shuffled) == sorted(items)
    assert all(a != b for a, b in zip(items, shuffled, strict=True))
