"""Reports as markdown tables and as standalone HTML pages (MLflow shows the HTML artifact rendered)."""

from __future__ import annotations

import base64
from pathlib import Path

from modelops.core.markdown import html_report, markdown_table

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def test_html_report_renders_tables_and_embeds_images(tmp_path: Path) -> None:
    image = tmp_path / "confusion_challenger.png"
    image.write_bytes(PNG)
    body = "# Evaluation of v3\n\n" + markdown_table(["metric", "champion"], [["macro-F1", "0.81"]])
    page = html_report("v3 <evaluation>", body, [image])
    assert page.startswith("<!doctype html>") and "<title>v3 &lt;evaluation&gt;</title>" in page
    assert "<h1>Evaluation of v3</h1>" in page and "<td>macro-F1</td>" in page and "<th>champion</th>" in page
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert 'alt="confusion_challenger"' in page
