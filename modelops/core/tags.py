"""Every tag name modelops writes, and the MLflow artifact paths read across layers, in one place.

Dagster run tags (`modelops/<name>`) are shown and filterable in the Dagster UI and carry a run's cause; MLflow run
tags (`modelops.<name>`) link tracking runs to their inputs, their Dagster run and the gate's decision. `lineage`
reads both to trace a model version back to the traffic that triggered it.
"""

from __future__ import annotations

from typing import Final


class DagsterTag:
    TRIGGER: Final = "modelops/trigger"  # what started the run: drift, schedule, migration, cli (absent: manual)
    DRIFT_EVENT: Final = "modelops/drift_event"  # the drifted window (also the run_key) a retraining run answers
    DRIFT_SEVERITY: Final = "modelops/drift_severity"
    DRIFT_BATCHES: Final = "modelops/batches"  # the drift event's traffic batches, comma-separated
    RETRAIN_MODE: Final = "modelops/retrain_mode"  # full or incremental
    DRIFT_REPORT_RUN: Final = "modelops/drift_report_run"  # the MLflow run holding the drift's Evidently report
    MIGRATION_BASE: Final = "modelops/migration_base"  # the base model a migration run moves to
    TRAINING: Final = "modelops/training"  # on training jobs: dagster.yaml's run queue starts one at a time
    MODEL_VERSION: Final = "modelops/model_version"  # the registered version a training run produced
    STAGE: Final = "modelops/stage"  # an asset's stage: data, monitoring, training, evaluation, promotion


class MlflowTag:
    CODE_VERSION: Final = "modelops.code_version"
    OWNER: Final = "modelops.owner"  # "<host>:<pid>" of the process that created the run
    END_REASON: Final = "modelops.end_reason"  # why a run that its process could not end was ended
    DAGSTER_RUN_ID: Final = "modelops.dagster_run_id"
    DAGSTER_RUN_URL: Final = "modelops.dagster_run_url"
    TRAINING_MODE: Final = "modelops.mode"
    DATA_CONTENT_HASH: Final = "modelops.data_content_hash"
    BASE_SHA256: Final = "modelops.base_sha256"
    DRIFT_EVENT: Final = "modelops.drift_event"
    DRIFT_BATCHES: Final = "modelops.batches"
    CHALLENGER_VERSION: Final = "modelops.challenger_version"
    CHAMPION_VERSION: Final = "modelops.champion_version"
    GATE_PASSED: Final = "modelops.gate_passed"


class VersionTag:
    """Tags on a registered model version that the server reads."""

    SERVING_VARIANT: Final = "modelops.serving_variant"  # pytorch, onnx-fp32 or onnx-int8
    SERVING_VARIANT_REASON: Final = "modelops.serving_variant_reason"
    SERVING_VARIANT_RUN_ID: Final = "modelops.serving_variant_run_id"  # the MLflow run holding the variant files
    # JSON {variant: {"file": artifact path in that run, "sha256": ...}} of every variant that passed, fastest first
    SERVING_VARIANT_FILES: Final = "modelops.serving_variant_files"


class MlflowArtifact:
    DRIFT_REPORT: Final = "drift/report.html"  # a drift check's Evidently report; retraining runs keep a copy
