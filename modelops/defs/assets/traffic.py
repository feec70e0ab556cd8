"""Production traffic: the batches the serving process captured, one dynamic partition per batch."""

# No `from __future__ import annotations` here: Dagster reads config/resource annotations at definition time.
import dagster as dg

from modelops.core.markdown import frame_table
from modelops.defs.metadata import counts_table
from modelops.defs.resources import DataLake

traffic_batches = dg.DynamicPartitionsDefinition(name="traffic_batches")


@dg.asset(group_name="monitoring", kinds={"parquet"}, partitions_def=traffic_batches)
def production_traffic(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """One captured batch of served predictions (text, label, confidence, model version) and the feedback it received."""
    from modelops.core.feedback import read_feedback
    from modelops.core.traffic import TrafficBatchError, read_batches

    batch_id = context.partition_key
    try:
        batch = read_batches(lake.settings.production_dir, [batch_id])
    except TrafficBatchError as exc:
        raise dg.Failure(str(exc)) from exc
    labelled = batch.merge(read_feedback(lake.settings.feedback_dir), on="id", how="inner", suffixes=("", "_true"))
    accuracy = float((labelled["predicted_label"] == labelled["label"]).mean()) if len(labelled) else float("nan")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(batch),
        "labelled_rows": len(labelled),
        "accuracy_on_labelled": accuracy,
        "mean_confidence": float(batch["confidence"].mean()),
        "model_versions": dg.MetadataValue.json(sorted(batch["model_version"].unique().tolist())),
        "predicted_labels": counts_table(batch["predicted_label"].value_counts().to_dict(), "label"),
        "p50_latency_ms": float(batch["latency_ms"].median()),
        "preview": dg.MetadataValue.md(frame_table(batch[["text", "predicted_label", "confidence"]].head(10),
                                                      index=False)),
    })
