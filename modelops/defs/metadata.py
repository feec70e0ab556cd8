"""Render core results as Dagster metadata operators can read in the UI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import dagster as dg

from modelops.core.markdown import frame_table

if TYPE_CHECKING:
    from modelops.core.monitoring.drift_monitoring import CheckedWindow
    from modelops.core.monitoring.traffic import TrafficWindow


def counts_table(counts: Mapping[str, int], key: str, value: str = "count") -> dg.MetadataValue:
    import pandas as pd

    frame = pd.DataFrame(sorted(counts.items()), columns=[key, value])
    return dg.MetadataValue.md(frame_table(frame, index=False))


def path_metadata(path: object) -> dg.MetadataValue:
    return dg.MetadataValue.path(str(path))


def window_metadata(checked: CheckedWindow, window: TrafficWindow, report_url: str) -> dict:
    """What Dagster shows for one checked window: drift scores against their calibrated thresholds, label-free
    accuracy estimate, the outputs whose share moved most, candidate new intents, report link."""
    from modelops.core.monitoring.new_topics import topics_markdown

    result = checked.result
    return {**result.to_metadata(), "champion_version": checked.champion, "received_rows": window.received,
            "quarantined_rows": window.quarantined,
            "evidently_report": dg.MetadataValue.url(report_url),
            "scores_vs_thresholds": dg.MetadataValue.md(result.scores_markdown()),
            "output_shares": dg.MetadataValue.md(result.output_shares_markdown()),
            "new_topics": dg.MetadataValue.md(topics_markdown(result.new_topics)), "batches": len(window.usable_ids)}


def drift_evaluation(checked: CheckedWindow, metadata: dict) -> dict:
    """The traffic_drift check's verdict on a window (a warning, never blocking: retraining is the sensor's call)."""
    result = checked.result
    return {"passed": not result.drift_detected, "severity": dg.AssetCheckSeverity.WARN, "metadata": metadata,
            "description": f"severity {result.severity}, share drifted {result.share_drifted:.2f}"}
