"""Rejection sampling as in the post: pruning thresholds, fallback, tiling, final pick."""

from __future__ import annotations

import pytest
from PIL import Image

from textimg.eval.rerank import PruneSettings, best_index, prune, rerank, tile


def test_prune_keep_only_if_above_wins_over_delete_under() -> None:
    assert prune([0.2, 0.96, 0.5, 0.97]) == [1, 3]
    assert prune([0.2, 0.05, 0.5]) == [0, 2]


def test_prune_all_pruned_fallback() -> None:
    assert prune([0.0, 0.05]) == [0, 1]
    assert prune([0.0, 0.05], PruneSettings(continue_if_all_pruned=False)) == []
    assert prune([0.0, 0.3], PruneSettings(keep_only_if_above=0.9, delete_under=-1)) == [0, 1]


def test_tile_and_best_index() -> None:
    assert tile([2, 5], 5) == [2, 5, 2, 5, 2]
    assert tile([1, 2, 3], 2) == [1, 2, 3]
    assert best_index([0.3, 0.9, 0.9]) == 1


def _images(*shades: int) -> list[Image.Image]:
    return [Image.new("L", (4, 4), shade) for shade in shades]


def _reader(texts_by_shade: dict[int, str]):
    return lambda images: [texts_by_shade[image.getpixel((0, 0))] for image in images]


def test_rerank_without_sr_keeps_best_base_sample() -> None:
    read = _reader({0: "helo", 1: "hello", 2: "xyz"})
    result = rerank("hello", _images(0, 1, 2), read)
    assert result.image.getpixel((0, 0)) == 1
    assert result.base_similarities[1] == 1.0 and result.survivors == [1]


def test_rerank_with_sr_tiles_survivors_and_rereads() -> None:
    calls = []

    def upsample(images, prompt):
        calls.append([image.getpixel((0, 0)) for image in images])
        # The "SR model" writes perfectly from shade 1 only on its second copy.
        return [Image.new("L", (8, 8), 10 + i) for i in range(len(images))]

    read_low = _reader({0: "zzz", 1: "hellp", 2: "help"})
    final_texts = {10: "hellp", 11: "hello", 12: "help", 13: "hel"}

    def read(images):
        if images[0].width == 4:
            return read_low(images)
        return [final_texts[image.getpixel((0, 0))] for image in images]

    settings = PruneSettings(keep_only_if_above=0.95, delete_under=0.2)
    result = rerank("hello", _images(0, 1, 2), read, upsample, 4, settings)
    assert result.survivors == [1, 2]
    assert calls == [[1, 2, 1, 2]]
    assert result.chosen == 1 and result.final_similarities[1] == 1.0


def test_rerank_needs_candidates() -> None:
    with pytest.raises(ValueError):
        rerank("x", [], lambda images: [])
