"""Markdown tables for reports shown in the Dagster UI and stored in MLflow."""

from __future__ import annotations

from collections.abc import Sequence
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
