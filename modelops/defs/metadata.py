"""Render core results as Dagster metadata operators can read in the UI."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from modelops.core.markdown import frame_table


def counts_table(counts: Mapping[str, int], key: str, value: str = "count") -> dg.MetadataValue:
    import pandas as pd

    frame = pd.DataFrame(sorted(counts.items()), columns=[key, value])
    return dg.MetadataValue.md(frame_table(frame, index=False))


def path_metadata(path: object) -> dg.MetadataValue:
    return dg.MetadataValue.path(str(path))
