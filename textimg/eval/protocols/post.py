"""The post's own scoring (nostalgebraist 2022): character-trigram similarity of prompt and
transcript after stripping spaces at both ends of each line, and exact match."""

from __future__ import annotations

from collections.abc import Sequence

from textimg.eval import metrics
from textimg.eval.protocols.base import ItemScores, Protocol, Target, mean_of


def score_item(target: Target, transcript: str) -> ItemScores:
    return {
        "trigram": metrics.trigram(target.text, transcript),
        "exact": metrics.exact(target.text, transcript),
    }


def aggregate(items: Sequence[ItemScores]) -> dict[str, float]:
    return {name: mean_of(items, name) for name in ("trigram", "exact")}


PROTOCOL = Protocol(
    name="post",
    title="frank's image model (nostalgebraist)",
    version="1",
    metrics=("trigram", "exact"),
    score_item=score_item,
    aggregate=aggregate,
    official_code=(
        "nostalgebraist/nostalgebraist-autoresponder@37101fa310f18b609b6c7b67d7ec90e8c6e2af29 "
        "src/multimodal/diffusion_helpers.py"
    ),
    official_engine="AWS Rekognition",
    deviations="`exact` has no counterpart in the post's code: its parity covers `trigram` only",
)
