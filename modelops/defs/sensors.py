"""The drift sensor: Evidently checks of each new window of captured traffic against the champion's reference; on
drift, a retraining run (exactly once per window).

The decisions (which window, whether and how to retrain) are `modelops.core.monitoring.drift_decision`'s and the
check itself `modelops.core.monitoring.drift_monitoring`'s; the sensor reads, calls them and reports.
"""

# No `from __future__ import annotations` here: Dagster reads resource annotations at definition time.
import time
from dataclasses import dataclass, field
from inspect import cleandoc
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from modelops.core.tags import DagsterTag
from modelops.defs.assets.generation import generation_policy
from modelops.defs.assets.labelling import write_labelling_queue
from modelops.defs.metadata import drift_evaluation, window_metadata
from modelops.defs.resources import (
    CustomisationKeys,
    DataLake,
    DataLakes,
    MlflowRegistries,
    PolicyFiles,
)

if TYPE_CHECKING:
    from modelops.core.evaluation.evaluation_policy import GenerationPolicy
    from modelops.core.monitoring.drift_decision import PendingDrift, SensorCursor
    from modelops.core.monitoring.drift_monitoring import ChampionReference, CheckedWindow
    from modelops.core.monitoring.retrain_policy import RetrainDecision
    from modelops.core.monitoring.traffic import TrafficWindow
    from modelops.core.registry.registry import ModelRegistry


def _quarantine(context: dg.SensorEvaluationContext, lake: DataLake, traffic: "TrafficWindow") -> str:
    """Write each batch's rejected rows (and move unusable batch files) to quarantine; a note for the skip reason."""
    from modelops.core.data.schema import UnsafePathError
    from modelops.core.monitoring.traffic import quarantine_batch

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


@dataclass
class _Tick:
    """One sensor tick's cursor and what it reports: partitions to add, asset events, a note on quarantined batches."""

    cursor: "SensorCursor"
    partitions: list
    note: str
    events: list = field(default_factory=list)

    def skip(self, context: dg.SensorEvaluationContext, reason: str) -> dg.SensorResult:
        """Skips the tick with its reason, also logged so that the tick's "View logs" in the Dagster UI says why."""
        context.log.info(f"skipped: {reason}{self.note}")
        return self.result(skip_reason=dg.SkipReason(reason + self.note))

    def result(self, **kwargs) -> dg.SensorResult:
        return dg.SensorResult(cursor=self.cursor.to_json(), dynamic_partitions_requests=self.partitions,
                               asset_events=self.events, **kwargs)


def _check_window(context: dg.SensorEvaluationContext, keys: CustomisationKeys, registry: "ModelRegistry",
                  window: "TrafficWindow", reference: "ChampionReference", config, tick: _Tick) -> "CheckedWindow":
    """The sensor's check of a new window, with the observation and check evaluation that chart it in Dagster."""
    from modelops.core.monitoring.drift_monitoring import check_window

    checked = check_window(registry, window, reference, config)
    metadata = {**window_metadata(checked, window, registry.run_url(checked.report_run)), "drift_event": checked.key}
    traffic_asset, result = keys.asset("production_traffic"), checked.result
    context.log.info(f"window {checked.key}: severity {result.severity}, share drifted {result.share_drifted:.2f}, "
                     f"estimated accuracy {result.estimated_accuracy_current:.3f}")
    tick.events += [dg.AssetObservation(asset_key=traffic_asset, partition=window.usable_ids[-1], metadata=metadata),
                    dg.AssetCheckEvaluation(asset_key=traffic_asset, check_name="traffic_drift",
                                            **drift_evaluation(checked, metadata))]
    return checked


def _decide(context: dg.SensorEvaluationContext, keys: CustomisationKeys, lake: DataLake, retrain_config: str,
            tick: _Tick, window: "TrafficWindow", checked_now: bool) -> dg.SensorResult:
    """Whether the pending drift gets a retraining run now (labels, cooldown, budget); asks for labels when short."""
    from modelops.core.config_files import load_config
    from modelops.core.monitoring.drift_decision import decide_run
    from modelops.core.monitoring.retrain_policy import RetrainPolicy

    policy = load_config(Path(retrain_config), RetrainPolicy)
    labels = _labelled_feedback_rows(lake)
    tick.cursor, decision, drift = decide_run(tick.cursor, labels, time.time(), policy)
    if decision.needs_labels and checked_now:
        tick.events.append(_queue_for_labelling(context, keys, lake, window, drift, policy.labelling_queue_size))
    if decision.mode is None:
        return tick.skip(context, f"{drift.key}: {decision.reason}")
    context.log.info(f"{drift.key}: requesting {decision.mode} retraining ({decision.reason})")
    return tick.result(run_requests=[_retrain_request(keys, drift, decision)])


def _labelled_feedback_rows(lake: DataLake) -> int:
    """Valid rows in the feedback folder: labels (id,label) for a classifier, answers (prompt,response) for a causal
    LM."""
    if lake.generative:
        from modelops.core.data.instructions import read_instruction_feedback

        return len(read_instruction_feedback(lake.settings.feedback_dir, lake.max_text_chars))
    from modelops.core.data.feedback import read_feedback

    return len(read_feedback(lake.settings.feedback_dir).valid)


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


def _read_new_traffic(lake: DataLake, generation: "GenerationPolicy | None", registry: "ModelRegistry", drift_config,
                      batch_ids: list[str]) -> tuple:
    """The champion's reference (or why there is none) and the new batches, validated (a causal LM's responses read
    as traffic under its `generation` policy)."""
    from modelops.core.monitoring.drift_monitoring import DriftMonitoringError, champion_reference
    from modelops.core.monitoring.traffic import validate_batches

    try:
        reference = champion_reference(registry, lake.settings.reference_dir, drift_config)
    except DriftMonitoringError as error:
        reference = str(error)
    traffic = validate_batches(lake.settings.production_dir, batch_ids, lake.max_text_chars,
                               None if isinstance(reference, str) else reference.embedding_dim, generation)
    return reference, traffic


def _partition_requests(context: dg.SensorEvaluationContext, keys: CustomisationKeys,
                        batch_ids: list[str]) -> list[dg.AddDynamicPartitionsRequest]:
    """Traffic-batch partitions for the usable batches Dagster does not know yet."""
    new = [b for b in batch_ids if not context.instance.has_dynamic_partition(keys.traffic_batches, b)]
    return [dg.AddDynamicPartitionsRequest(keys.traffic_batches, new)] if new else []


def drift_sensor(keys: CustomisationKeys, retrain_job, interval_seconds: int) -> dg.SensorDefinition:
    """The customisation's drift sensor, requesting `retrain_job` runs."""

    def sensor(context: dg.SensorEvaluationContext, lakes: DataLakes, mlflow: MlflowRegistries,
               policies: PolicyFiles) -> dg.SensorResult | dg.SkipReason:
        """Checks each new window of captured traffic for drift against the champion's reference; retrains on drift.

        Every batch is checked once (the cursor holds the last checked batch). Invalid rows are left out of the
        window and unusable batch files are moved to the quarantine folder, each with its reason; the cursor moves
        past them. Drift that calls for retraining waits for enough new labelled feedback, then passes the cooldown
        and daily budget, and requests exactly one run (run_key = fingerprint of the drifted batches).
        """
        from modelops.core.config_files import load_config
        from modelops.core.monitoring.drift_config import DriftConfig
        from modelops.core.monitoring.drift_decision import SensorCursor, plan_window, record_check
        from modelops.core.monitoring.traffic import is_batch_id, list_batches

        lake, files = lakes.of(keys.name), policies.of(keys.name)
        cursor = SensorCursor.from_json(context.cursor)
        pending = cursor.new_batches(list_batches(lake.settings.production_dir), is_batch_id)
        if not pending and cursor.pending_drift is None:
            return dg.SkipReason("no new traffic batches")
        config, registry = load_config(Path(files.drift_config), DriftConfig), mlflow.of(keys.name).registry()
        reference, window = _read_new_traffic(lake, generation_policy(lake, files), registry, config, pending)
        tick = _Tick(cursor, _partition_requests(context, keys, window.usable_ids), _quarantine(context, lake, window))
        ordered = [b for b in pending if is_batch_id(b)]
        plan = plan_window(cursor, ordered, window.usable_ids, len(window.valid), config.min_window_rows,
                           reference if isinstance(reference, str) else None)
        tick.cursor = plan.cursor
        if plan.skip_reason:
            return tick.skip(context, plan.skip_reason)
        if plan.check:
            checked = _check_window(context, keys, registry, window, reference, config, tick)
            tick.cursor, reason = record_check(tick.cursor, ordered, window.usable_ids, checked.result.severity,
                                               checked.result.retrain_recommended, checked.report_run)
            if reason:
                return tick.skip(context, reason)
        return _decide(context, keys, lake, files.retrain_config, tick, window, plan.check)

    return dg.sensor(name=keys.job("drift_sensor"), job=retrain_job, minimum_interval_seconds=interval_seconds,
                     default_status=dg.DefaultSensorStatus.RUNNING, description=cleandoc(sensor.__doc__))(sensor)
