"""Markdown tables for reports shown in the Dagster UI and stored in MLflow, and those reports as HTML pages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported by callers that have frames; loading the code location stays light
    import pandas as pd


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table of pre-formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def frame_table(frame: pd.DataFrame, index: bool = True, max_rows: int = 50, float_digits: int = 4) -> str:
    """A DataFrame as a markdown table; floats rounded, `|` and newlines escaped, long frames cut with a note."""
    shown = frame.head(max_rows).reset_index() if index else frame.head(max_rows)
    rows = [[f"{v:.{float_digits}f}" if isinstance(v, float) else str(v).replace("|", "\\|").replace("\n", " ")
             for v in row] for row in shown.itertuples(index=False)]
    table = markdown_table([str(c) for c in shown.columns], rows)
    return table + (f"\n\n_{len(frame) - max_rows} more rows not shown_" if len(frame) > max_rows else "")


REPORT_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
              "table{border-collapse:collapse;margin:1em 0}"
              "th,td{border:1px solid #ccc;padding:4px 10px;text-align:left}"
              "th{background:#f3f3f3}img{max-width:48%;margin-right:1%}")


def html_report(title: str, body: str, images: Sequence[Path] = ()) -> str:
    """A standalone HTML page from a markdown report (tables included), with PNG images embedded."""
    import base64
    import html

    import markdown

    figures = "".join(f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
                      f'{base64.b64encode(Path(p).read_bytes()).decode()}">' for p in images)
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{REPORT_CSS}</style></head><body>{markdown.markdown(body, extensions=['tables'])}"
            f"{figures}</body></html>")
