"""The HTML report of a `score` or an `eval` run: one self-contained page, nothing fetched.

A summary table of every metric (mean, 95% CI, and for `eval` the best of K and the reranked
pick), then one table row per image: its thumbnail, key, status, every metric, prompt and
transcript, worst first. A few lines of inline script sort by any column (click its header) and
filter by text and status, so the page needs no server and no network. Thumbnails are small
JPEGs (one channel when the image is grey), a few KB each, so a 1,000-image page stays a few MB
where full PNGs made it tens.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image, ImageChops

from textimg.eval import metrics

THUMBNAIL_SIDE = 128
JPEG_QUALITY = 70
REPORT_KINDS = ("score", "eval")
EXTRA_COLUMNS = ("sample", "chosen", "sr_trigram")
"""`eval` columns shown when the rows have them: the sample index, the reranked pick, and the
trigram of the upsampled pick (the cascade)."""

_STYLE = """
body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:.2em .4em;vertical-align:top;text-align:left}
#images th[data-type]{cursor:pointer;white-space:nowrap}
#images th[data-dir]::after{content:attr(data-dir)}
#images td.n{text-align:right;font-variant-numeric:tabular-nums}
#images img{image-rendering:pixelated;width:128px}
pre{margin:0;white-space:pre-wrap;max-width:22em}.muted{color:#666}
"""

_SCRIPT = """
const table = document.getElementById("images"), rows = [...table.tBodies[0].rows];
const query = document.getElementById("query"), status = document.getElementById("status");
let column = -1, ascending = true;
table.tHead.onclick = (event) => {
  const th = event.target.closest("th");
  if (!th || !th.dataset.type) return;
  ascending = th.cellIndex === column ? !ascending : true;
  column = th.cellIndex;
  const value = (row) => row.cells[column].dataset.v ?? row.cells[column].textContent;
  const sign = ascending ? 1 : -1;
  rows.sort((a, b) => {
    const x = value(a), y = value(b);
    if (th.dataset.type !== "num") return sign * x.localeCompare(y);
    if (x === "" || y === "") return (x === "") - (y === "");  // unscored rows last
    return sign * (x - y);
  });
  table.tBodies[0].append(...rows);
  for (const cell of th.parentNode.cells) delete cell.dataset.dir;
  th.dataset.dir = ascending ? " \\u25b2" : " \\u25bc";
};
query.oninput = status.onchange = () => {
  const text = query.value.toLowerCase();
  let shown = 0;
  for (const row of rows) {
    row.hidden = Boolean((status.value && row.dataset.status !== status.value)
      || (text && !row.textContent.toLowerCase().includes(text)));
    shown += !row.hidden;
  }
  document.getElementById("shown").textContent = shown;
};
"""


def thumbnail_data_uri(image: Image.Image) -> str:
    """A small JPEG of `image` as a data URI: a few KB, where a PNG of a noisy sample is tens."""
    thumb = image.convert("RGB")
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    red, green, blue = thumb.split()
    if not ImageChops.difference(red, green).getbbox() and not (
        ImageChops.difference(green, blue).getbbox()
    ):
        thumb = red  # grey: one channel is a third of the bytes and no colour fringes
    jpeg = io.BytesIO()
    thumb.save(jpeg, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.getvalue()).decode("ascii")


def _sort_key(metric: str, lower_is_better: bool) -> Callable[[dict[str, Any]], tuple]:
    """Worst first: failures (no score) at the very top, then by `metric` from its worst end."""

    def key(row: dict[str, Any]) -> tuple[int, float]:
        value = row.get(metric, math.nan)
        if value is None or math.isnan(value):
            return (0, 0.0)
        return (1, -value if lower_is_better else value)

    return key


def render_report(
    rows: Sequence[dict[str, Any]],
    thumbnails: dict[str, str],
    summary: dict[str, Any],
    kind: str = "score",
) -> str:
    """The page of one run; `kind` ("score" or "eval") titles it and says what was judged."""
    if kind not in REPORT_KINDS:
        raise ValueError(f"report kind must be one of {REPORT_KINDS}, not {kind!r}")
    title = f"textimg {kind} report"
    if kind == "eval" and "checkpoint" in summary:
        title += f": {summary['checkpoint']['path']}"
    statuses = Counter(row["status"] for row in rows)
    options = "".join(
        f'<option value="{html.escape(name)}">{html.escape(name)} ({count})</option>'
        for name, count in sorted(statuses.items())
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"{_run_lines(summary, kind)}{_summary_table(summary)}{_protocol_tables(summary)}"
        f"<h2>Images, worst first</h2><p><input id='query' type='search' "
        f"placeholder='filter: key, prompt, transcript'> <select id='status'>"
        f"<option value=''>every status</option>{options}</select> "
        f"<span id='shown'>{len(rows)}</span> of {len(rows)} shown; click a column to sort</p>"
        f"{_image_table(rows, thumbnails, summary)}<script>{_SCRIPT}</script></body></html>"
    )


def _run_lines(summary: dict[str, Any], kind: str) -> str:
    """What was judged and how: counts, OCR engine, and for `eval` the checkpoint and sampling."""
    parts = []
    if kind == "eval":
        for name in ("checkpoint", "sampling", "super_resolution"):
            if name in summary:
                parts.append((name, summary[name]))
    if "protocol" in summary:
        protocol = summary["protocol"]
        parts.append(("protocol", {k: protocol[k] for k in ("name", "version", "official_code")}))
        parts.append(("prompts", summary.get("prompts", {})))
    parts += [("counts", summary.get("counts", {})), ("OCR", summary.get("ocr", {}))]
    return "".join(
        f"<p class='muted'>{html.escape(name)} {html.escape(json.dumps(value))}</p>"
        for name, value in parts
    )


def _summary_table(summary: dict[str, Any]) -> str:
    """Every metric's mean and 95% CI, beside best of K and the reranked pick where present."""
    if "protocol" in summary:
        return ""  # a protocol run's numbers are the benchmark's aggregate: _protocol_tables
    rerank = summary.get("rerank", {})
    best = any(f"best_of_k_{name}" in summary for name in metrics.METRICS)
    head = "<tr><th>metric</th><th>mean</th><th>95% CI</th>"
    head += ("<th>best of K</th>" if best else "") + ("<th>rerank</th>" if rerank else "")
    body = []
    for name in metrics.METRICS:
        if name not in summary:
            continue
        cells = [_fmt(summary[name]["mean"]), _interval(summary[name]["ci95"])]
        if best:
            cells.append(_fmt(summary.get(f"best_of_k_{name}", {}).get("mean")))
        if rerank:
            cells.append(_fmt(rerank.get(name, {}).get("mean")))
        body.append(f"<tr><th>{name}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    share = f"<p>exact share {_fmt(summary.get('exact_share'))}</p>"
    return f"<table>{head}</tr>{''.join(body)}</table>{share}"


def _image_table(
    rows: Sequence[dict[str, Any]], thumbnails: dict[str, str], summary: dict[str, Any]
) -> str:
    """One row per image: thumbnail, key, status, every metric, prompt, transcript; a run of
    supplied transcripts has no image column."""
    protocol = summary.get("protocol")
    candidates = protocol["item_metrics"] if protocol else list(metrics.METRICS)
    names = [name for name in candidates if any(name in row for row in rows)]
    extra = [name for name in EXTRA_COLUMNS if any(name in row for row in rows)]
    pictures = any(row.get("image") for row in rows)
    worst_first = _sort_key("trigram", False)
    if protocol and names:
        worst_first = _sort_key(names[0], names[0] in protocol["lower_is_better"])
    header = ("<th>image</th>" if pictures else "") + "<th data-type='text'>key</th>"
    header += "".join(f"<th data-type='num'>{name}</th>" for name in extra)
    header += "<th data-type='text'>status</th>"
    header += "".join(f"<th data-type='num'>{name}</th>" for name in names)
    header += "<th data-type='text'>prompt</th><th data-type='text'>transcript</th>"
    body = []
    for row in sorted(rows, key=worst_first):
        uri = thumbnails.get(f"{row['key']}/{row['image']}")
        picture = f'<img src="{uri}" alt="">' if uri else "<i>no image</i>"
        status = html.escape(row["status"])
        note = html.escape(row.get("error") or "")
        error = f"<br><span class='muted'>{note}</span>" if note else ""
        cells = [f"<td>{picture}</td>"] if pictures else []
        cells.append(f"<td>{html.escape(str(row['key']))}</td>")
        cells += [_number_cell(row.get(name)) for name in extra]
        cells.append(f"<td>{status}{error}</td>")
        cells += [_number_cell(row.get(name)) for name in names]
        for text in (row["prompt"], row["transcript"]):
            cells.append(f"<td><pre>{html.escape(text or '')}</pre></td>")
        body.append(f"<tr data-status='{status}'>{''.join(cells)}</tr>")
    head = f"<thead><tr>{header}</tr></thead>"
    return f"<table id='images'>{head}<tbody>{''.join(body)}</tbody></table>"


def _protocol_tables(summary: dict[str, Any]) -> str:
    """A protocol run's own aggregate (beside the clean-rendering ceiling where measured), and
    both by target length."""
    protocol = summary.get("protocol")
    if not protocol:
        return ""
    ceiling = summary.get("ceiling")
    head = "<tr><th>metric</th><th>score</th>" + ("<th>ceiling</th>" if ceiling else "") + "</tr>"
    body = []
    for name, value in summary["aggregate"].items():
        cells = [_fmt(value)] + ([_fmt(ceiling["aggregate"].get(name))] if ceiling else [])
        row = "".join(f"<td>{c}</td>" for c in cells)
        body.append(f"<tr><th>{html.escape(name)}</th>{row}</tr>")
    title = f"<h2>{html.escape(protocol['title'])} (protocol {html.escape(protocol['name'])})</h2>"
    tables = [f"{title}<table>{head}{''.join(body)}</table>"]
    for measure, buckets in (ceiling or {}).get("by_length", {}).items():
        names = protocol["metrics"]
        header = f"<tr><th>{html.escape(measure)}</th><th>images</th>" + "".join(
            f"<th>{html.escape(n)}</th><th>ceiling {html.escape(n)}</th>" for n in names
        )
        lines = []
        for bucket, cell in buckets.items():
            values = [_fmt(side.get(n)) for n in names for side in (cell["score"], cell["ceiling"])]
            lines.append(
                f"<tr><th>{html.escape(bucket)}</th><td>{cell['images']}</td>"
                + "".join(f"<td>{v}</td>" for v in values)
                + "</tr>"
            )
        tables.append(
            f"<h3>by {html.escape(measure)}</h3><table>{header}</tr>{''.join(lines)}</table>"
        )
    return "".join(tables)


def _number_cell(value: Any) -> str:
    """A right-aligned cell whose `data-v` is what sorting compares (empty: no value)."""
    if isinstance(value, bool):  # the reranked pick
        return f"<td class='n' data-v='{int(value)}'>{'&#10003;' if value else ''}</td>"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "<td class='n' data-v=''>–</td>"
    shown = f"{value:.3f}" if isinstance(value, float) else str(value)
    return f"<td class='n' data-v='{value}'>{shown}</td>"


def _interval(bounds: Sequence[float | None]) -> str:
    return f"[{_fmt(bounds[0])}, {_fmt(bounds[1])}]"


def _fmt(value: float | None) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )
