"""Drift sensor: Evidently checks on each new traffic window; on drift, a retraining run (exactly once per window)."""

# No `from __future__ import annotations` here: Dagster reads resource annotations at definition time.
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from modelops.core.tags import DagsterTag, MlflowTag
from modelops.defs.assets.labelling import write_labelling_queue
from modelops.defs.resources import CustomisationKeys, DataLake, MlflowRegistry, Policies

if TYPE_CHECKING:
    import pandas as pd

    from modelops.core.drift_decision import PendingDrift, SensorCursor
    from modelops.core.retrain_policy import RetrainDecision
    from modelops.core.traffic import TrafficWindow

DRIFT_REPORT = "drift/report.html"


def _log_drift_report(mlflow: MlflowRegistry, key: str, result, calibration, batch_ids: list[str],
                      champion: str) -> str:
    """An MLflow run for one checked window (metrics, Evidently report, scores against the champion's calibrated
    thresholds, candidate new intents); returns its id."""
    from modelops.core.new_topics import topics_markdown

    registry = mlflow.registry()
    with registry.run(f"drift-check-{key}", {MlflowTag.DRIFT_EVENT: key, MlflowTag.CHAMPION_VERSION: champion,
                                             MlflowTag.DRIFT_BATCHES: ",".join(batch_ids)[:4900]}) as run_id:
        registry.log_metrics(run_id, {k: float(v) for k, v in result.to_metadata().items()
                                      if isinstance(v, (int, float))})
        registry.log_text(run_id, result.html, DRIFT_REPORT)
        registry.log_text(run_id, f"# Drift check {key}\n\n{result.scores_markdown()}\n\n## Calibration of champion "
                                  f"v{champion}\n\n{calibration.markdown()}\n", "drift/thresholds.md")
        registry.log_text(run_id, f"# Candidate new intents in {key}\n\n{topics_markdown(result.new_topics)}\n",
                          "drift/new_topics.md")
    return run_id


def _window_metadata(result, received: int, quarantined: int, report_url: str, champion: str) -> dict:
    """What Dagster shows for one checked window: drift scores against their calibrated thresholds, label-free
    accuracy estimate, candidate new intents, report link."""
    from modelops.core.new_topics import topics_markdown

    return {**result.to_metadata(), "champion_version": champion, "received_rows": received,
            "quarantined_rows": quarantined, "evidently_report": dg.MetadataValue.url(report_url),
            "scores_vs_thresholds": dg.MetadataValue.md(result.scores_markdown()),
            "new_topics": dg.MetadataValue.md(topics_markdown(result.new_topics))}


def _champion_reference(lake: DataLake, champion: str | None, config) -> tuple | str:
    """The champion's reference frame, vocabulary and drift calibration (calibrated now when it has none for
    this policy), or why there is none."""
    from modelops.core.drift_calibration import DriftCalibrationError
    from modelops.core.reference import load_reference, reference_calibration

    directory = Path(lake.home) / "reference"
    reference = load_reference(directory, champion) if champion else None
    if reference is None:
        return f"no drift reference for champion {champion} yet; bootstrap a champion first"
    try:
        return (*reference, reference_calibration(directory, champion, *reference, config))
    except DriftCalibrationError as error:
        return f"no drift calibration for champion {champion}: {error}"


def _drift_evaluation(result, metadata: dict) -> dict:
    """The traffic_drift check's verdict on a window (a warning, never blocking: retraining is the sensor's call)."""
    return {"passed": not result.drift_detected, "severity": dg.AssetCheckSeverity.WARN, "metadata": metadata,
            "description": f"severity {result.severity}, share drifted {result.share_drifted:.2f}"}


class TrafficDriftConfig(dg.Config):
    """How much of the newest captured traffic an on-demand drift check reads."""

    rows: int = 0  # at least this many valid rows from the newest batches; 0: the policy's min_window_rows


def traffic_drift(lake: DataLake, mlflow: MlflowRegistry, policies: Policies, rows: int = 0) -> dg.AssetCheckResult:
    """Drift of captured traffic against the champion's reference (Evidently), as a non-blocking warning.

    The drift sensor reports one evaluation per window it checks, so this check's *Plots* chart the drift share,
    per-column drift scores and the label-free accuracy estimate over time. Executed on demand (UI, `modelops
    drift-check`), it checks the newest batches (at least `rows` valid rows, min_window_rows by default) without
    moving the sensor's cursor or quarantining anything.
    """
    from modelops.core.drift import DriftConfig
    from modelops.core.traffic import TrafficWindow, list_batches, validate_batch

    config = DriftConfig.from_yaml(Path(policies.drift_config))
    champion = mlflow.registry().alias_version("champion")
    reference = _champion_reference(lake, champion, config)
    if isinstance(reference, str):
        raise dg.Failure(reference)
    wanted = rows or config.min_window_rows
    if wanted < config.min_window_rows:
        raise dg.Failure(f"rows={rows} is below min_window_rows={config.min_window_rows}: no decision on so few rows")
    newest_first = []
    for batch_id in reversed(list_batches(lake.settings.production_dir)):
        if sum(len(b.valid) for b in newest_first) >= wanted:
            break
        newest_first.append(validate_batch(lake.settings.production_dir, batch_id, lake.max_text_chars,
                                           _embedding_dim(reference[0])))
    window = TrafficWindow(newest_first[::-1])
    if len(window.valid) < wanted:
        raise dg.Failure(f"not enough captured traffic: {len(window.valid)} valid rows, {wanted} needed "
                         f"(min_window_rows is {config.min_window_rows})")
    result, _, _, metadata = _check_and_report(mlflow, window, reference, champion, config)
    return dg.AssetCheckResult(**_drift_evaluation(result, metadata))


def _embedding_dim(reference: "pd.DataFrame") -> int | None:
    """Length of the reference's embeddings (traffic rows of another length cannot be compared), None without any."""
    vectors = [v for v in reference.get("embedding", []) if v is not None]
    return len(vectors[0]) if vectors else None


def _quarantine(context: dg.SensorEvaluationContext, lake: DataLake, traffic: "TrafficWindow") -> str:
    """Write each batch's rejected rows (and move unusable batch files) to quarantine; a note for the skip reason."""
    from modelops.core.schema import UnsafePathError
    from modelops.core.traffic import quarantine_batch

    folder = lake.settings.quarantine_dir / "traffic"
    notes = []
    for batch in traffic.batches:
        try:
            path = quarantine_batch(lake.settings.production_dir, batch, folder)
        except (OSError, UnsafePathError) as exc:
            context.log.error(f"could not quarantine traffic batch {batch.batch_id!r} ({batch.error}): {exc}")
            failure = f"; could not be moved: {exc}"
        else:
            failure = ""
            if path is not None:
                context.log.warning(f"traffic batch {batch.batch_id}: {len(batch.rejected)} of {batch.received} "
                                    f"rows quarantined to {path}" + (f" ({batch.error})" if batch.error else ""))
        if not batch.usable:
            notes.append(f"{batch.batch_id} ({batch.rejected['reason'].iloc[0]}{failure})")
    return f"; skipped {len(notes)} unusable batch(es), quarantine in {folder}: {', '.join(notes)}" if notes else ""


def _skip(context: dg.SensorEvaluationContext, reason: str, cursor: "SensorCursor", **events) -> dg.SensorResult:
    """Skips the tick with its reason, also logged so that the tick's "View logs" in the Dagster UI says why."""
    context.log.info(f"skipped: {reason}")
    return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor.to_json(), **events)


def _check_and_report(mlflow: MlflowRegistry, window: "TrafficWindow", reference: tuple, champion: str,
                      config) -> tuple:
    """Evidently drift check of a window against the champion's reference and its MLflow report; returns (result,
    window key, report run id, the window's Dagster metadata)."""
    from modelops.core.drift import check_drift
    from modelops.core.drift_decision import window_key

    result = check_drift(reference[0], window.valid, reference[1], config, reference[2])
    key = window_key(window.usable_ids)
    report_run = _log_drift_report(mlflow, key, result, reference[2], window.usable_ids, champion)
    metadata = {**_window_metadata(result, window.received, window.quarantined,
                                   mlflow.registry().run_url(report_run), champion),
                "batches": len(window.usable_ids)}
    return result, key, report_run, metadata


def _check_window(context: dg.SensorEvaluationContext, keys: CustomisationKeys, mlflow: MlflowRegistry,
                  traffic: "TrafficWindow", reference: tuple, champion: str, config) -> tuple:
    """The sensor's check of a new window, with the observation and check evaluation that chart it in Dagster;
    returns (result, report run id, asset events)."""
    result, key, report_run, metadata = _check_and_report(mlflow, traffic, reference, champion, config)
    metadata["drift_event"] = key
    traffic_asset = keys.asset("production_traffic")
    usable = traffic.usable_ids
    context.log.info(f"window {key}: severity {result.severity}, share drifted {result.share_drifted:.2f}, "
                     f"estimated accuracy {result.estimated_accuracy_current:.3f}")
    return result, report_run, [
        dg.AssetObservation(asset_key=traffic_asset, partition=usable[-1], metadata=metadata),
        dg.AssetCheckEvaluation(asset_key=traffic_asset, check_name="traffic_drift",
                                **_drift_evaluation(result, metadata))]


def _queue_for_labelling(context: dg.SensorEvaluationContext, keys: CustomisationKeys, lake: DataLake,
                         traffic: "TrafficWindow", drift: "PendingDrift", size: int) -> dg.AssetMaterialization:
    """Rows of the checked window to label, while drift waits for labels; the labelling_queue materialisation."""
    path, metadata = write_labelling_queue(lake, traffic.valid, traffic.usable_ids[-1], size)
    context.log.info(f"{drift.key}: {metadata['dagster/row_count']} rows to label in {path}")
    return dg.AssetMaterialization(asset_key=keys.asset("labelling_queue"), partition=traffic.usable_ids[-1],
                                   metadata={**metadata, "drift_event": drift.key})


def _retrain_request(keys: CustomisationKeys, drift: "PendingDrift", decision: "RetrainDecision") -> dg.RunRequest:
    """One run per drift event (run_key), tagged with what triggered it."""
    return dg.RunRequest(
        run_key=drift.key,
        run_config=keys.run_config(lora_adapter={"mode": decision.mode}),
        tags={DagsterTag.DRIFT_EVENT: drift.key, DagsterTag.TRIGGER: "drift", DagsterTag.DRIFT_SEVERITY: drift.severity,
              DagsterTag.DRIFT_BATCHES: ",".join(drift.batches)[:4000], DagsterTag.RETRAIN_MODE: str(decision.mode),
              DagsterTag.DRIFT_REPORT_RUN: drift.report_run},
    )


def _read_new_traffic(lake: DataLake, mlflow: MlflowRegistry, policies: Policies, batch_ids: list[str]) -> tuple:
    """The drift policy, the champion, its reference (or why there is none) and the new batches, validated."""
    from modelops.core.drift import DriftConfig
    from modelops.core.traffic import validate_batches

    config = DriftConfig.from_yaml(Path(policies.drift_config))
    champion = mlflow.registry().alias_version("champion")
    reference = _champion_reference(lake, champion, config)
    traffic = validate_batches(lake.settings.production_dir, batch_ids, lake.max_text_chars,
                               None if isinstance(reference, str) else _embedding_dim(reference[0]))
    return config, champion, reference, traffic


def _partition_requests(context: dg.SensorEvaluationContext, keys: CustomisationKeys,
                        batch_ids: list[str]) -> list[dg.AddDynamicPartitionsRequest]:
    """Traffic-batch partitions for the usable batches Dagster does not know yet."""
    new = [b for b in batch_ids if not context.instance.has_dynamic_partition(keys.traffic_batches, b)]
    return [dg.AddDynamicPartitionsRequest(keys.traffic_batches, new)] if new else []


def drift_sensor(context: dg.SensorEvaluationContext, keys: CustomisationKeys, lake: DataLake, mlflow: MlflowRegistry,
                 policies: Policies) -> dg.SensorResult | dg.SkipReason:
    """Checks each new window of captured traffic for drift against the champion's reference; retrains on drift.

    Every batch is checked once (the cursor holds the last checked batch). Invalid rows are left out of the window
    and unusable batch files are moved to the quarantine folder, each with its reason; the cursor moves past them.
    Drift that calls for retraining waits for enough new labelled feedback, then passes the cooldown and daily
    budget, and requests exactly one run (run_key = fingerprint of the drifted batches). The decisions are
    `modelops.core.drift_decision`'s; this body reads, checks and reports.
    """
    from modelops.core.drift_decision import SensorCursor, decide_run, plan_window, record_check
    from modelops.core.feedback import read_feedback
    from modelops.core.retrain_policy import load_retrain_policy
    from modelops.core.traffic import is_batch_id, list_batches

    cursor = SensorCursor.from_json(context.cursor)
    pending = cursor.new_batches(list_batches(lake.settings.production_dir), is_batch_id)
    if not pending and cursor.pending_drift is None:
        return dg.SkipReason("no new traffic batches")
    config, champion, reference, traffic = _read_new_traffic(lake, mlflow, policies, pending)
    quarantined, usable, ordered = _quarantine(context, lake, traffic), traffic.usable_ids, [
        b for b in pending if is_batch_id(b)]
    events: dict = {"dynamic_partitions_requests": _partition_requests(context, keys, usable), "asset_events": []}
    plan = plan_window(cursor, ordered, usable, len(traffic.valid), config.min_window_rows,
                       reference if isinstance(reference, str) else None)
    cursor = plan.cursor
    if plan.skip_reason:
        return _skip(context, plan.skip_reason + quarantined, cursor, **events)
    if plan.check:
        result, report_run, events["asset_events"] = _check_window(context, keys, mlflow, traffic, reference, champion,
                                                                   config)
        cursor, reason = record_check(cursor, ordered, usable, result.severity, result.retrain_recommended, report_run)
        if reason:
            return _skip(context, reason + quarantined, cursor, **events)
    policy = load_retrain_policy(Path(policies.retrain_config))
    labels = len(read_feedback(lake.settings.feedback_dir).valid)
    cursor, decision, drift = decide_run(cursor, labels, time.time(), policy)
    if decision.needs_labels and plan.check:
        events["asset_events"].append(_queue_for_labelling(context, keys, lake, traffic, drift,
                                                           policy.labelling_queue_size))
    if decision.mode is None:
        return _skip(context, f"{drift.key}: {decision.reason}{quarantined}", cursor, **events)
    context.log.info(f"{drift.key}: requesting {decision.mode} retraining ({decision.reason})")
    return dg.SensorResult(run_requests=[_retrain_request(keys, drift, decision)], cursor=cursor.to_json(), **events)
