"""Production traffic's body: the batches the serving process captured, one dynamic partition per batch."""

# No `from __future__ import annotations` here: Dagster reads config/resource annotations at definition time.
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from modelops.core.markdown import frame_table
from modelops.defs.metadata import counts_table, path_metadata
from modelops.defs.resources import DataLakes, customisation_of

if TYPE_CHECKING:
    import pandas as pd

def production_traffic(context: dg.AssetExecutionContext, lakes: DataLakes) -> dg.MaterializeResult:
    """One captured batch of served predictions (text, label, confidence, version) and the feedback it received."""
    from modelops.core.monitoring.traffic import quarantine_batch, validate_batch

    batch_id = context.partition_key
    settings = lakes.of(customisation_of(context)).settings
    validation = validate_batch(settings.production_dir, batch_id, settings.max_text_chars)
    if not validation.usable:
        raise dg.Failure(f"Traffic batch {batch_id} is unusable ({validation.error}). The drift sensor moves such "
                         f"files to {settings.quarantine_dir / 'traffic'}; nothing else to do for this partition.")
    metadata: dict[str, dg.RawMetadataValue] = {"received_rows": validation.received,
                                                "quarantined_rows": len(validation.rejected)}
    quarantine = quarantine_batch(settings.production_dir, validation, settings.quarantine_dir / "traffic")
    if quarantine is not None:
        metadata["quarantine_path"] = path_metadata(quarantine)
        metadata["quarantine_reasons"] = counts_table(validation.rejected["reason"].value_counts().to_dict(), "reason")
    return dg.MaterializeResult(metadata={**metadata, **_batch_metadata(validation.valid, settings.feedback_dir)})


def _batch_metadata(batch: "pd.DataFrame", feedback_dir: "Path") -> dict:
    """A batch's rows, accuracy on the rows labelled since, confidence, versions, labels and latency."""
    from modelops.core.data.feedback import read_feedback

    labelled = batch.merge(read_feedback(feedback_dir).valid[["id", "label"]], on="id", how="inner",
                           suffixes=("", "_true"))
    accuracy = float((labelled["predicted_label"] == labelled["label"]).mean()) if len(labelled) else float("nan")
    return {
        "dagster/row_count": len(batch),
        "labelled_rows": len(labelled),
        "accuracy_on_labelled": accuracy,
        "mean_confidence": float(batch["confidence"].mean()),
        "model_versions": dg.MetadataValue.json(sorted(batch["model_version"].astype(str).unique().tolist())),
        "predicted_labels": counts_table(batch["predicted_label"].value_counts().to_dict(), "label"),
        "p50_latency_ms": float(batch["latency_ms"].median()),
        "preview": dg.MetadataValue.md(frame_table(batch[["text", "predicted_label", "confidence"]].head(10),
                                                      index=False)),
    }
