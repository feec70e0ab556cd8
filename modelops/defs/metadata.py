"""Render core results as Dagster metadata operators can read in the UI."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import pandas as pd


def markdown_table(frame: pd.DataFrame, index: bool = True, max_rows: int = 50, float_digits: int = 4) -> str:
    """A pipe table (no extra dependency); long frames are cut with a note."""
    shown = frame.head(max_rows).reset_index() if index else frame.head(max_rows)
    cells = [[f"{v:.{float_digits}f}" if isinstance(v, float) else str(v).replace("|", "\\|").replace("\n", " ")
              for v in row] for row in shown.itertuples(index=False)]
    header = [str(c) for c in shown.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows not shown_")
    return "\n".join(lines)


def counts_table(counts: Mapping[str, int], key: str, value: str = "count") -> dg.MetadataValue:
    frame = pd.DataFrame(sorted(counts.items()), columns=[key, value])
    return dg.MetadataValue.md(markdown_table(frame, index=False))


def path_metadata(path: object) -> dg.MetadataValue:
    return dg.MetadataValue.path(str(path))
