"""Training, evaluation and promotion assets' bodies: curated set -> LoRA adapter -> evaluation -> champion."""

# No `from __future__ import annotations` here: Dagster reads config/resource annotations at definition time.

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
import yaml

from modelops.core.markdown import frame_table
from modelops.core.tags import DagsterTag, MlflowTag
from modelops.defs.assets.data import read_curated
from modelops.defs.metadata import path_metadata
from modelops.defs.resources import BaseModel, DataLake, MlflowRegistry, Policies, TrainingLauncher
from modelops.defs.sensors import DRIFT_REPORT
from modelops.training_process import TrainingJob

if TYPE_CHECKING:  # pandas loads when an asset runs, not when the code location loads
    import pandas as pd

    from modelops.core.challenger_evaluation import ChallengerEvaluation
    from modelops.core.drift_calibration import DriftCalibration

TRAINING_POOL = "modelops_training"  # lora_adapter's concurrency pool: one training step at a time, any run


class LoraAdapterConfig(dg.Config):
    """Per-run training choices; unset values come from the training policy file."""

    mode: Literal["full", "incremental"] = "full"
    epochs: int | None = None
    max_steps: int | None = None
    seed: int | None = None


def _training_config(policies: Policies, config: LoraAdapterConfig):
    from modelops.core.train import TrainingConfig, TrainingConfigError

    values = yaml.safe_load(Path(policies.training_config).read_text()) or {}
    values["mode"] = config.mode
    for name in ("epochs", "max_steps", "seed"):
        if getattr(config, name) is not None:
            values[name] = getattr(config, name)
    try:
        return TrainingConfig.from_dict(values)
    except TrainingConfigError as exc:
        raise dg.Failure(f"Invalid training configuration ({policies.training_config}): {exc}") from exc


def _run_training(context: dg.AssetExecutionContext, launcher: TrainingLauncher, job: TrainingJob) -> dict:
    """Run the training process through Pipes; its reported metadata, or a Failure carrying the process's own error."""
    from dagster._core.errors import DagsterPipesExecutionError

    try:
        reported = launcher.launch(context, job).get_materialize_result()
    except DagsterPipesExecutionError as exc:
        error = Path(job.error_path)
        reason = error.read_text().strip() if error.is_file() else "see the process output in the run's logs"
        raise dg.Failure(f"The training process failed ({exc}): {reason}") from exc
    return dict(reported.metadata or {})


def lora_adapter(context: dg.AssetExecutionContext, config: LoraAdapterConfig, lake: DataLake, base_model: BaseModel,
                 mlflow: MlflowRegistry, policies: Policies, training: TrainingLauncher) -> dg.MaterializeResult:
    """A LoRA adapter (+ classification head) trained in its own process (Dagster Pipes), tracked in MLflow, aliased `challenger`."""
    from modelops.core.atomic import write_parquet_atomic
    from modelops.core.base_model import BaseModelError
    from modelops.core.curate import content_hash
    from modelops.core.train import TRAINING_CONFIG_ARTIFACT, TrainingConfigError, partial_dir
    from modelops.core.training_run import incremental_inputs, remove_leftovers_of_killed_runs

    settings = _training_config(policies, config)
    curated, record = read_curated(lake)
    try:
        base = base_model.describe()
    except BaseModelError as exc:
        raise dg.Failure(str(exc)) from exc
    registry = mlflow.registry()
    train = curated[curated["split"] == "train"]
    validation = curated[curated["split"] == "validation"]
    init_adapter, warm_start = None, None
    if settings.mode == "incremental":
        try:
            found = incremental_inputs(train, registry, Path(lake.home), lake.settings.curated_dir,
                                       settings.replay_fraction, settings.seed, base.sha256)
        except TrainingConfigError as exc:
            raise dg.Failure(str(exc)) from exc
        train, init_adapter, warm_start = found.train, found.adapter, found.champion
        if init_adapter is None:
            context.log.warning("no champion yet: incremental run falls back to training from the base")
            settings = dataclasses.replace(settings, mode="full")
        else:
            context.log.info(f"incremental: {len(train)} examples ({found.new_rows} new) on champion v{warm_start}")
    tags = {**mlflow.dagster_run_tags(context.run_id), MlflowTag.TRAINING_MODE: settings.mode,
            MlflowTag.DATA_CONTENT_HASH: record["content_hash"], MlflowTag.BASE_SHA256: base.sha256,
            **{f"dagster.{k}": v for k, v in context.run.tags.items() if k.startswith("modelops/")}}
    for folder, killed in remove_leftovers_of_killed_runs(registry, Path(lake.home)):
        context.log.info(f"removed {folder}, left by killed MLflow run {killed}")
    work = Path(lake.home) / "training" / context.run_id  # the training process's inputs and error report
    with registry.run(f"train-{settings.mode}", tags) as run_id:
        registry.log_params(run_id, {**settings.to_params(), "base_name": base.name, "base_sha256": base.sha256,
                                     "data_content_hash": record["content_hash"], "train_rows": len(train),
                                     "validation_rows": len(validation), "warm_start": bool(init_adapter),
                                     "training_processes": training.processes, "training_launcher": training.launcher,
                                     "train_set_hash": content_hash(train)})
        registry.log_text(run_id, json.dumps(dataclasses.asdict(settings), indent=2), TRAINING_CONFIG_ARTIFACT)
        if context.run.tags.get(DagsterTag.DRIFT_REPORT_RUN):  # a drift-triggered run keeps the report of its drift
            registry.copy_artifact(context.run.tags[DagsterTag.DRIFT_REPORT_RUN], DRIFT_REPORT, run_id)
        output = Path(lake.home) / "adapters" / run_id
        job = TrainingJob(
            train_path=str(write_parquet_atomic(train, work / "train.parquet")),
            validation_path=str(write_parquet_atomic(validation, work / "validation.parquet")),
            base_path=str(base.path), base_task_type=base.task_type, training=dataclasses.asdict(settings),
            output_dir=str(output), tracking_uri=registry.tracking_uri, model_name=registry.model_name,
            mlflow_run_id=run_id, error_path=str(work / "error.txt"),
            init_adapter=str(init_adapter) if init_adapter else None,
            owner_pid=os.getpid() if training.launcher == "subprocess" else None)
        try:
            reported = _run_training(context, training, job)
            version = registry.register_adapter(run_id, output, {
                "data_content_hash": record["content_hash"], "base_name": base.name, "base_sha256": base.sha256,
                "mode": settings.mode, "dagster_run_id": context.run_id, "seed": str(settings.seed),
                **({"warm_start_version": warm_start} if warm_start else {})})
        except BaseException:  # a failed run keeps no adapter folder (the registry holds what was registered)
            for folder in (output, partial_dir(output)):
                shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    context.instance.add_run_tags(context.run_id, {DagsterTag.MODEL_VERSION: f"{registry.model_name}/{version}"})
    lake.write_record("lora_adapter", {"version": version, "run_id": run_id, "adapter_dir": str(output),
                                       "mode": settings.mode, "content_hash": record["content_hash"]})
    adapter_bytes = sum(f.stat().st_size for f in output.glob("*.safetensors"))
    return dg.MaterializeResult(metadata={
        **reported, "model_version": version, "mode": settings.mode, "mlflow_run_id": run_id,
        "mlflow_run": dg.MetadataValue.url(registry.run_url(run_id)), "train_rows": len(train),
        "adapter_bytes": adapter_bytes, "adapter_path": path_metadata(output),
        "base_model": f"{base.name} ({base.sha256[:12]})", "data_content_hash": record["content_hash"],
    })


def _load_classifier(registry, version: str, lake: DataLake, base_model: BaseModel):
    from modelops.core.predictor import AdapterClassifier

    folder = registry.download_adapter(version, Path(lake.home) / "adapters" / f"registry-v{version}")
    return AdapterClassifier(base_model.describe(), folder)


def _inline_png(path: Path) -> str:
    """Markdown that shows a PNG inside the Dagster UI's metadata panel."""
    import base64

    return f"![{path.stem}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


def evaluation(context: dg.AssetExecutionContext, lake: DataLake, base_model: BaseModel, mlflow: MlflowRegistry,
               policies: Policies) -> dg.MaterializeResult:
    """Challenger vs champion on the frozen test split and recent labelled traffic: metrics, business cost, gate decision."""
    from modelops.core.challenger_evaluation import ChallengerEvaluationError, evaluate_challenger

    registry = mlflow.registry()
    challenger_version = lake.read_record("lora_adapter")["version"]
    curated, _ = read_curated(lake)
    try:
        found = evaluate_challenger(registry, challenger_version, curated, Path(policies.evaluation_config),
                                    lambda version: _load_classifier(registry, version, lake, base_model),
                                    Path(lake.home) / "evaluations" / f"v{challenger_version}",
                                    mlflow.dagster_run_tags(context.run_id))
    except ChallengerEvaluationError as error:
        raise dg.Failure(str(error)) from error
    for warning in found.warnings:
        context.log.warning(warning)
    lake.write_record("evaluation", {**found.record(), "evaluated_at": time.time()})
    return dg.MaterializeResult(metadata=_evaluation_metadata(found, registry.run_url(found.mlflow_run_id)))


def _evaluation_metadata(found: "ChallengerEvaluation", run_url: str) -> dict:
    """What the evaluation materialisation shows: versions, metrics, cost, the gate's table, the confusion matrix."""
    challenger, champion, decision, coverage = found.challenger, found.champion, found.decision, found.coverage
    metadata: dict[str, dg.RawMetadataValue] = {
        "challenger_version": found.challenger_version, "champion_version": str(found.champion_version),
        "gate_passed": decision.passed, "mlflow_run": dg.MetadataValue.url(run_url), "test_rows": found.test_rows,
        "recent_traffic_rows": found.recent_rows,
        "challenger_macro_f1": challenger.macro_f1, "challenger_accuracy": challenger.accuracy,
        "challenger_ece": challenger.ece, "challenger_cost_per_1000": challenger.expected_cost_per_1000,
        "comparison": dg.MetadataValue.md(found.comparison), "gate": dg.MetadataValue.md(decision.markdown()),
        "cost_model_unpriced_labels": dg.MetadataValue.json(coverage.unpriced),
        "cost_model_unknown_labels": dg.MetadataValue.json(coverage.unknown),
        "cost_model_coverage": dg.MetadataValue.md(coverage.markdown()),
        "per_class": dg.MetadataValue.md(challenger.per_class_markdown()),
        "confusion_matrix": path_metadata(found.confusion_png),
        "confusion_matrix_image": dg.MetadataValue.md(_inline_png(found.confusion_png)),
    }
    if challenger.abstention is not None:
        metadata.update({"abstention_threshold": challenger.abstention.threshold,
                         "abstention_coverage": challenger.abstention.coverage,
                         "abstention_covered_accuracy": challenger.abstention.covered_accuracy,
                         "challenger_cost_per_1000_with_fallback": challenger.abstention.cost_per_1000,
                         "abstention": dg.MetadataValue.md(found.abstention_table)})
    if champion is not None:
        metadata.update({"champion_macro_f1": champion.macro_f1, "champion_cost_per_1000": champion.expected_cost_per_1000})
    if found.recent_challenger_macro_f1 is not None:
        metadata["recent_traffic_challenger_macro_f1"] = found.recent_challenger_macro_f1
    return metadata


def promotion_gate(lake: DataLake) -> dg.AssetCheckResult:
    """The owner's promotion gate: the challenger may replace the champion only if every rule passes."""
    record = lake.read_record("evaluation")
    return dg.AssetCheckResult(passed=bool(record["passed"]), metadata={
        "challenger_version": record["challenger_version"], "reasons": dg.MetadataValue.json(record["reasons"]),
        "decision": dg.MetadataValue.md(record["gate_markdown"])})


def _save_drift_reference(registry, version: str, lake: DataLake, base_model: BaseModel,
                          policies: Policies) -> tuple[int, "DriftCalibration | str"]:
    """Store the new champion's predictions on held-out curated data (the reference its traffic is compared with)
    and the drift calibration made from them (also in the version's MLflow run), or why it cannot be made."""
    from modelops.core.drift import DriftConfig
    from modelops.core.drift_calibration import DriftCalibrationError
    from modelops.core.reference import build_reference, reference_calibration, save_reference

    curated, _ = read_curated(lake)
    held_out = curated[curated["split"] != "train"]
    frame, vocabulary = build_reference(_load_classifier(registry, version, lake, base_model),
                                        held_out["text"].tolist(), curated[curated["split"] == "train"]["text"].tolist(),
                                        held_out["label"].tolist())
    directory = Path(lake.home) / "reference"
    save_reference(directory, version, frame, vocabulary)
    try:
        calibration = reference_calibration(directory, version, frame, vocabulary,
                                            DriftConfig.from_yaml(Path(policies.drift_config)))
    except DriftCalibrationError as error:
        return len(frame), str(error)
    run_id = registry.version_info(version)["run_id"]
    registry.log_text(run_id, calibration.to_json(), "drift/calibration.json")
    registry.log_text(run_id, calibration.markdown(), "drift/calibration.md")
    return len(frame), calibration


def champion(context: dg.AssetExecutionContext, lake: DataLake, base_model: BaseModel,
             mlflow: MlflowRegistry, policies: Policies) -> dg.MaterializeResult:
    """The model version serving production: the `champion` alias moves here only when the gate passed; its drift
    thresholds are calibrated on its own held-out rows for the drift policy's false-alarm rate."""
    record = lake.read_record("evaluation")
    version = record["challenger_version"]
    if not record["passed"]:
        raise dg.Failure(f"Gate refused v{version}; champion unchanged. Reasons: {record['reasons']}")
    registry = mlflow.registry()
    current = registry.alias_version("champion")
    reference_rows, calibration = _save_drift_reference(registry, version, lake, base_model, policies)
    previous = current if current == version else registry.promote(version, reason=record["gate_markdown"])
    lake.write_record("champion", {"version": version, "previous": previous, "promoted_at": time.time()})
    context.log.info(f"champion is now v{version} (previous: {previous})")
    if isinstance(calibration, str):
        context.log.warning(f"drift monitoring is off for v{version}: {calibration}")
        drift_metadata: dict[str, dg.RawMetadataValue] = {"drift_calibration": calibration}
    else:
        context.log.info(f"drift thresholds calibrated on {reference_rows} held-out rows in {calibration.seconds:.1f}s")
        drift_metadata = {"drift_false_alarm_rate": calibration.false_alarm_rate,
                          "drift_calibration_seconds": calibration.seconds,
                          "drift_calibration": dg.MetadataValue.md(calibration.markdown())}
    import pandas as pd

    history = pd.DataFrame([e.__dict__ for e in registry.promotion_history()])
    return dg.MaterializeResult(metadata={
        "model_version": version, "previous_champion": str(previous), "drift_reference_rows": reference_rows,
        "macro_f1": record["challenger_metrics"]["macro_f1"],
        "expected_cost_per_1000": record["challenger_metrics"]["expected_cost_per_1000"],
        "promotion_history": dg.MetadataValue.md(frame_table(history, index=False)),
        **drift_metadata,
    })
