"""The HTML report of a scoring run: one self-contained page (no network), worst images first."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from PIL import Image

THUMBNAIL_SIDE = 256


def thumbnail_data_uri(image: Image.Image) -> str:
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    png = io.BytesIO()
    thumb.save(png, format="PNG")
    return "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")


def _sort_key(row: dict[str, Any]) -> tuple[int, float]:
    """Worst first: failures (no score) at the very top, then by ascending trigram."""
    value = row["trigram"]
    return (0, 0.0) if math.isnan(value) else (1, value)


def render_report(rows: Sequence[dict[str, Any]], thumbnails: dict[str, str], summary: dict) -> str:
    """A self-contained HTML page: summary table, then each image with its prompt and transcript."""
    head = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{_fmt(value['mean'])}</td>"
        f"<td>[{_fmt(value['ci95'][0])}, {_fmt(value['ci95'][1])}]</td></tr>"
        for name, value in summary.items()
        if isinstance(value, dict) and "mean" in value
    )
    cards = []
    for row in sorted(rows, key=_sort_key):
        uri = thumbnails.get(f"{row['key']}/{row['image']}")
        picture = f'<img src="{uri}" alt="{html.escape(row["key"])}">' if uri else "<i>no image</i>"
        transcript = "" if row["transcript"] is None else row["transcript"]
        cards.append(
            f'<div class="card"><div>{picture}</div><div><b>{html.escape(row["key"])}</b> '
            f"trigram {_fmt(row['trigram'])} · cer {_fmt(row['cer'])} · "
            f"status {html.escape(row['status'])} {html.escape(row['error'] or '')}"
            f"<p>prompt</p><pre>{html.escape(row['prompt'] or '')}</pre>"
            f"<p>transcript</p><pre>{html.escape(transcript)}</pre></div></div>"
        )
    counts = html.escape(json.dumps(summary.get("counts", {})))
    ocr = html.escape(json.dumps(summary.get("ocr", {})))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>textimg score report</title>"
        "<style>body{font-family:sans-serif;margin:2em}.card{display:flex;gap:1em;"
        "border-top:1px solid #ccc;padding:.5em 0}img{image-rendering:pixelated;width:256px}"
        "pre{background:#f4f4f4;padding:.3em;white-space:pre-wrap}p{margin:.3em 0 0;color:#666}"
        "</style></head><body><h1>textimg score report</h1>"
        f"<table><tr><th>metric</th><th>mean</th><th>95% CI</th></tr>{head}</table>"
        f"<p>counts {counts}</p><p>OCR {ocr}</p><h2>Images, worst first</h2>"
        + "".join(cards)
        + "</body></html>"
    )


def _fmt(value: float | None) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )
