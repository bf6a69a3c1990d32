"""The HTML report: small JPEG thumbnails, every metric per image, sort and filter script inline,
nothing fetched from the network, and titled by what made it (`score` or `eval`)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import pytest
from PIL import Image

from textimg.eval import metrics
from textimg.eval.report import render_report, thumbnail_data_uri
from textimg.eval.scoring import summarize

MAX_BYTES_PER_IMAGE = 2_500
"""A 1,000-image report of 64 px renderings measured 1.7 MB (JPEG thumbnails, table, script)."""


def _rows(draw_text, count: int) -> tuple[list[dict], dict[str, str]]:
    """`count` scored rows of small renderings, a third of them misread, with thumbnails."""
    rows, thumbnails = [], {}
    for index in range(count):
        prompt = f"word {index}"
        transcript = prompt if index % 3 else f"wrod {index}"
        row = {"key": f"k{index}", "prompt": prompt, "transcript": transcript}
        row |= {"image": f"k{index}.png", "status": "ok", "error": ""}
        rows.append(row | metrics.score_pair(prompt, transcript))
        image = draw_text(prompt, size=64, font_size=12, at=(4, 24))
        thumbnails[f"k{index}/k{index}.png"] = thumbnail_data_uri(image)
    return rows, thumbnails


def test_a_thousand_image_report_stays_small_and_self_contained(draw_text) -> None:
    rows, thumbnails = _rows(draw_text, 1000)
    page = render_report(rows, thumbnails, summarize(rows))
    assert len(page.encode()) < 1000 * MAX_BYTES_PER_IMAGE
    assert page.count("data:image/jpeg;base64,") == 1000
    assert "<script>" in page and "<script src" not in page
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", page), "the page must fetch nothing"


def test_thumbnails_are_small_jpegs_grey_when_the_image_is(draw_text) -> None:
    grey = draw_text("hello", size=256, font_size=40)
    colour = Image.new("RGB", (256, 256), (200, 30, 30))
    for image, mode in ((grey, "L"), (colour, "RGB")):
        uri = thumbnail_data_uri(image)
        data = base64.b64decode(uri.removeprefix("data:image/jpeg;base64,"))
        with Image.open(io.BytesIO(data)) as thumbnail:
            assert thumbnail.format == "JPEG" and thumbnail.mode == mode
            assert max(thumbnail.size) == 128
        assert len(data) < 8_000


def test_every_metric_is_a_sortable_column_of_every_row(draw_text) -> None:
    rows, thumbnails = _rows(draw_text, 3)
    rows.append({"key": "gone", "prompt": "x", "transcript": None, "image": "",
                 "status": "missing_image", "error": "no gone.<image> in folder"}
                | {name: float("nan") for name in metrics.METRICS})  # fmt: skip
    page = render_report(rows, thumbnails, summarize(rows))
    header = page[page.index("<table id='images'>") : page.index("</thead>")]
    for name in metrics.METRICS:
        assert f"<th data-type='num'>{name}</th>" in header
    body = page[page.index("<tbody>") :]
    assert body.count("<tr data-status=") == 4
    assert body.count("class='n' data-v=") == 4 * len(metrics.METRICS)
    # Worst first: the unscored row, then the misread one, then the exact ones.
    assert body.index("<td>gone</td>") < body.index("<td>k0</td>") < body.index("<td>k1</td>")
    assert '<option value="missing_image">missing_image (1)</option>' in page


def test_eval_and_score_reports_say_which_they_are(draw_text) -> None:
    rows, thumbnails = _rows(draw_text, 4)
    for k, row in enumerate(rows):
        row |= {"key": f"k{k // 2}", "sample": k % 2, "chosen": k % 2 == 0}
    summary = summarize(rows)
    summary["rerank"] = summarize([row for row in rows if row["chosen"]])
    summary["checkpoint"] = {"path": "out/tiny/checkpoint.pt", "sha256_16": "0" * 16}
    page = render_report(rows, thumbnails, summary, kind="eval")
    assert "<title>textimg eval report: out/tiny/checkpoint.pt</title>" in page
    assert "<th>best of K</th>" in page and "<th>rerank</th>" in page
    assert "<th data-type='num'>chosen</th>" in page and "&#10003;" in page
    score_page = render_report(rows, thumbnails, summarize(rows))
    assert "<title>textimg score report</title>" in score_page and "rerank" not in score_page
    with pytest.raises(ValueError, match="kind"):
        render_report(rows, thumbnails, summary, kind="other")


@pytest.mark.skipif(shutil.which("node") is None, reason="node checks the inline script's syntax")
def test_the_inline_script_parses(draw_text, tmp_path) -> None:
    rows, thumbnails = _rows(draw_text, 2)
    page = render_report(rows, thumbnails, summarize(rows))
    script = page[page.index("<script>") + len("<script>") : page.index("</script>")]
    (tmp_path / "report.js").write_text(script)
    checked = subprocess.run(["node", "--check", str(tmp_path / "report.js")], capture_output=True)
    assert checked.returncode == 0, checked.stderr.decode()
