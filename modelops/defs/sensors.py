"""Drift sensor: Evidently checks on each new traffic window; on drift, a retraining run (exactly once per window)."""

# No `from __future__ import annotations` here: Dagster reads resource annotations at definition time.
import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from modelops.defs.assets.traffic import production_traffic, traffic_batches
from modelops.defs.jobs import retrain_job
from modelops.defs.resources import DataLake, MlflowRegistry, Policies

DRIFT_EVENT_TAG = "modelops/drift_event"
TRIGGER_TAG = "modelops/trigger"


def window_key(batch_ids: list[str]) -> str:
    """Stable fingerprint of a window of batches: the run_key of any run it triggers."""
    return "drift-" + hashlib.sha256("\n".join(sorted(batch_ids)).encode()).hexdigest()[:16]


def _log_drift_report(mlflow: MlflowRegistry, key: str, result, batch_ids: list[str], champion: str) -> str:
    registry = mlflow.registry()
    with registry.run(f"drift-check-{key}", {"modelops.drift_event": key, "modelops.champion_version": champion,
                                             "modelops.batches": ",".join(batch_ids)[:4900]}) as run_id:
        registry.log_metrics(run_id, {k: float(v) for k, v in result.to_metadata().items()
                                      if isinstance(v, (int, float))})
        registry.log_text(run_id, result.html, "drift/report.html")
    return registry.run_url(run_id)


@dg.sensor(job=retrain_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def drift_sensor(context: dg.SensorEvaluationContext, lake: DataLake, mlflow: MlflowRegistry,
                 policies: Policies) -> dg.SensorResult | dg.SkipReason:
    """Checks each new window of captured traffic for drift against the champion's reference; retrains on drift."""
    from modelops.core.drift import DriftConfig, check_drift
    from modelops.core.reference import load_reference
    from modelops.core.retrain_policy import decide_retrain, load_retrain_policy
    from modelops.core.traffic import TrafficBatchError, list_batches, read_batches

    cursor = json.loads(context.cursor) if context.cursor else {"last_batch": "", "retrains": []}
    all_batches = list_batches(lake.settings.production_dir)
    pending = [b for b in all_batches if b > cursor["last_batch"]]
    new_partitions = [b for b in pending if not context.instance.has_dynamic_partition(traffic_batches.name, b)]
    partition_requests = [traffic_batches.build_add_request(new_partitions)] if new_partitions else []
    if not pending:
        return dg.SkipReason("no new traffic batches")
    config = DriftConfig.from_yaml(Path(policies.drift_config))
    champion = mlflow.registry().alias_version("champion")
    reference = load_reference(Path(lake.home) / "reference", champion) if champion else None
    if reference is None:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"no drift reference for champion {champion} yet"),
                               dynamic_partitions_requests=partition_requests, cursor=context.cursor)
    try:
        window = read_batches(lake.settings.production_dir, pending)
    except TrafficBatchError as exc:
        context.log.error(f"unreadable traffic batch, skipped until fixed: {exc}")
        return dg.SensorResult(skip_reason=dg.SkipReason(f"unreadable batch: {exc}"),
                               dynamic_partitions_requests=partition_requests, cursor=context.cursor)
    if len(window) < config.min_window_rows:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"waiting for traffic: {len(window)}/{config.min_window_rows} rows in "
                                      f"{len(pending)} new batch(es)"),
            dynamic_partitions_requests=partition_requests, cursor=context.cursor)
    result = check_drift(reference[0], window, reference[1], config)
    key = window_key(pending)
    report_url = _log_drift_report(mlflow, key, result, pending, champion)
    metadata = {**result.to_metadata(), "drift_event": key, "batches": len(pending), "champion_version": champion,
                "evidently_report": dg.MetadataValue.url(report_url)}
    observations = [dg.AssetObservation(asset_key=production_traffic.key, partition=b, metadata=metadata)
                    for b in pending[-1:]]
    cursor["last_batch"] = pending[-1]
    now = time.time()
    decision = decide_retrain(result.severity, result.retrain_recommended, cursor["retrains"], now,
                              load_retrain_policy(Path(policies.retrain_config)))
    context.log.info(f"window {key}: severity {result.severity}, share drifted {result.share_drifted:.2f}, "
                     f"estimated accuracy {result.estimated_accuracy_current:.3f} -> {decision.reason}")
    if decision.mode is None:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"{key}: {decision.reason}"), asset_events=observations,
                               dynamic_partitions_requests=partition_requests, cursor=json.dumps(cursor))
    cursor["retrains"] = [t for t in cursor["retrains"] if now - t < 86400] + [now]
    run = dg.RunRequest(
        run_key=key,
        run_config={"ops": {"lora_adapter": {"config": {"mode": decision.mode}}}},
        tags={DRIFT_EVENT_TAG: key, TRIGGER_TAG: "drift", "modelops/drift_severity": result.severity,
              "modelops/batches": ",".join(pending)[:4000], "modelops/retrain_mode": decision.mode},
    )
    return dg.SensorResult(run_requests=[run], asset_events=observations,
                           dynamic_partitions_requests=partition_requests, cursor=json.dumps(cursor))


weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_full_retrain", job=retrain_job, cron_schedule="0 3 * * 0",
    run_config={"ops": {"lora_adapter": {"config": {"mode": "full"}}}},
    tags={TRIGGER_TAG: "schedule"}, default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Fallback: a full retrain every Sunday 03:00, drift or not.",
)
