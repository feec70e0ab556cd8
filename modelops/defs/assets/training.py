"""Training, evaluation and promotion assets: curated set -> LoRA adapter -> evaluation -> champion.

Each body reads its customisation's resources, calls one core function and returns the metadata operators see.
"""

# No `from __future__ import annotations` here: Dagster reads config/resource annotations at definition time.

import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import dagster as dg
import pydantic

from modelops.core.markdown import frame_table
from modelops.core.tags import DagsterTag
from modelops.core.training.training_config import RUN_OVERRIDES, TrainingConfig
from modelops.defs.assets.data import read_curated
from modelops.defs.assets.generation import evaluate_generative, promote_generative_champion
from modelops.defs.metadata import path_metadata
from modelops.defs.resources import (
    BaseModel,
    DataLake,
    DataLakes,
    MlflowRegistries,
    Policies,
    PolicyFiles,
    TrainingLauncher,
    customisation_of,
)

if TYPE_CHECKING:  # pandas loads when an asset runs, not when the code location loads
    import threading

    from modelops.core.evaluation.challenger_evaluation import ChallengerEvaluation
    from modelops.core.registry.promotion import Promotion
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.training.base_model import BaseModelInfo
    from modelops.core.training.training_run import TrainedAdapter, TrainingJob, TrainingRequest

TRAINING_POOL = "modelops_training"  # lora_adapter's concurrency pool: one training step at a time, any run
# what the evaluation step imports (the model stack, plots); lora_adapter imports them while its training runs
EVALUATION_IMPORTS = ("peft", "modelops.core.serving.predictor", "modelops.core.evaluation.challenger_evaluation",
                      "matplotlib.figure", "matplotlib.backends.backend_agg")

# what the champion's metadata shows of its evaluation: a classifier's, then a generative model's
HEADLINE_METRICS = ("macro_f1", "expected_cost_per_1000", "exact_match", "valid_output", "cost_per_1000")

# Per-run training choices over the training policy file: its mode (default full) and RUN_OVERRIDES (unset: the file's).
LoraAdapterConfig = pydantic.create_model(
    "LoraAdapterConfig", __base__=dg.Config,
    __doc__="Per-run training choices; unset values come from the policy file.",
    mode=(TrainingConfig.model_fields["mode"].annotation, "full"),
    **{name: (Optional[TrainingConfig.model_fields[name].annotation], None) for name in RUN_OVERRIDES})


def _training_config(policies: Policies, config: LoraAdapterConfig) -> TrainingConfig:
    """The training policy file with the run's choices over it."""
    from modelops.core.config_files import ConfigError, read_mapping, validated

    path = Path(policies.training_config)
    overrides = {name: value for name, value in config.model_dump().items() if value is not None}
    try:
        return validated(TrainingConfig, {**read_mapping(path), **overrides}, path)
    except ConfigError as error:
        raise dg.Failure(f"Invalid training configuration: {error}") from error


def _max_prompt_tokens(policies: Policies) -> int:
    """The longest prompt a causal LM reads when it generates: the training policy's max_length."""
    return _training_config(policies, LoraAdapterConfig()).max_length


def lora_adapter(context: dg.AssetExecutionContext, config: LoraAdapterConfig, lakes: DataLakes, base_model: BaseModel,
                 mlflow: MlflowRegistries, policies: PolicyFiles, training: TrainingLauncher) -> dg.MaterializeResult:
    """A LoRA adapter (+ head) trained in its own process (Dagster Pipes), tracked in MLflow, aliased `challenger`."""
    from modelops.core.training.train import TrainingConfigError
    from modelops.core.training.training_run import TrainingRequest

    name = customisation_of(context)
    lake, store = lakes.of(name), mlflow.of(name)
    curated, record = read_curated(lake)
    request = TrainingRequest(
        config=_training_config(policies.of(name), config), curated=curated, content_hash=record["content_hash"],
        base=base_model.describe(name), home=Path(lake.home), curated_dir=lake.settings.curated_dir,
        run_tags={**store.dagster_run_tags(context.run_id),
                  **{f"dagster.{k}": v for k, v in context.run.tags.items() if k.startswith("modelops/")}},
        launcher=training.launcher, processes=training.processes,
        drift_report_run=context.run.tags.get(DagsterTag.DRIFT_REPORT_RUN),
        drift_severity=context.run.tags.get(DagsterTag.DRIFT_SEVERITY))
    registry = store.registry()
    try:
        trained = _train_with_evaluation_imports(context, request, registry, training)
    except TrainingConfigError as exc:
        raise dg.Failure(str(exc)) from exc
    context.instance.add_run_tags(context.run_id,
                                  {DagsterTag.MODEL_VERSION: f"{registry.model_name}/{trained.version}"})
    lake.write_record("lora_adapter", {"version": trained.version, "run_id": trained.run_id,
                                       "adapter_dir": str(trained.adapter_dir), "mode": trained.mode,
                                       "content_hash": record["content_hash"]})
    return dg.MaterializeResult(metadata=_adapter_metadata(trained, registry, request))


def _train_with_evaluation_imports(context: dg.AssetExecutionContext, request: "TrainingRequest",
                                   registry: "ModelRegistry", training: TrainingLauncher) -> "TrainedAdapter":
    """`train_adapter` in `training`'s process, with what the evaluation step needs imported in a thread meanwhile;
    the thread is joined before this returns or raises, so no import is left half-done for evaluation to race with,
    and none is started for a run refused before its training process launches."""
    from modelops.core.training.training_run import train_adapter

    prefetch = []

    def launch(job: "TrainingJob") -> dict:
        prefetch.append(_import_in_background(EVALUATION_IMPORTS))
        return training.train(context, job)

    try:
        return train_adapter(request, registry, launch, context.log)
    finally:
        for thread in prefetch:
            thread.join()


def _import_in_background(modules: tuple[str, ...]) -> "threading.Thread":
    """Import `modules` in a thread of this run worker while its training process trains: the evaluation step that
    follows here needs them (~5 s of imports on 2 cores, otherwise paid after training), and the training process,
    itself importing for its first seconds on one core, leaves the other idle. The caller joins the thread before its
    step ends (and it is no daemon), so no import is half-done when another step or the interpreter's exit comes. A
    module that fails to import fails again, with its error, where it is used."""
    import contextlib
    import importlib
    import threading

    def run() -> None:
        for module in modules:
            with contextlib.suppress(Exception):
                importlib.import_module(module)

    thread = threading.Thread(target=run, name="evaluation-imports")
    thread.start()
    return thread


def _adapter_metadata(trained: "TrainedAdapter", registry: "ModelRegistry", request: "TrainingRequest") -> dict:
    return {**trained.reported, "model_version": trained.version, "mode": trained.mode,
            "mlflow_run_id": trained.run_id, "mlflow_run": dg.MetadataValue.url(registry.run_url(trained.run_id)),
            "train_rows": trained.train_rows, "adapter_bytes": trained.adapter_bytes,
            "drift_severity": request.drift_severity or "none (not started by drift)",
            **({"replay_rows": trained.replay_rows} if trained.replay_rows is not None else {}),
            "adapter_path": path_metadata(trained.adapter_dir),
            "base_model": f"{request.base.name} ({request.base.sha256[:12]})",
            "data_content_hash": request.content_hash}


def _classifier_loader(registry: "ModelRegistry", lake: DataLake, base: "BaseModelInfo"):
    """Loads a registered version's adapter (downloaded under the lake's adapters/) on the base model, with the
    predictions it already made kept under evaluations/predictions/ (prediction_cache.py)."""
    from modelops.core.serving.prediction_cache import PredictionCache, adapter_fingerprint
    from modelops.core.serving.predictor import AdapterClassifier

    def load(version: str) -> AdapterClassifier:
        folder = registry.download_adapter(version, lake.settings.adapters_dir / f"registry-v{version}")
        classifier = AdapterClassifier(base, folder)
        classifier.prediction_cache = PredictionCache(_predictions_dir(lake) / f"v{version}.npz",
                                                      classifier.label_names,
                                                      adapter_fingerprint(folder, classifier.max_length))
        return classifier

    return load


def _predictions_dir(lake: DataLake) -> Path:
    return Path(lake.home) / "evaluations" / "predictions"


def _served_loader(registry: "ModelRegistry", lake: DataLake, base: "BaseModelInfo"):
    """Loads a registered version as it will serve (its chosen ONNX variant, else PyTorch): the drift reference must
    come from the model whose traffic it is compared with."""
    from modelops.core.serving.served_model import load_served_classifier

    def load(version: str):
        return load_served_classifier(registry, version, base, lake.settings.adapters_dir / "served").classifier

    return load


def _inline_png(path: Path) -> str:
    """Markdown that shows a PNG inside the Dagster UI's metadata panel."""
    import base64

    return f"![{path.stem}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


def evaluation(context: dg.AssetExecutionContext, lakes: DataLakes, base_model: BaseModel, mlflow: MlflowRegistries,
               policies: PolicyFiles) -> dg.MaterializeResult:
    """Challenger vs champion on the test split and recent labelled traffic: metrics, business cost, gate decision."""
    from modelops.core.config_files import ConfigError
    from modelops.core.evaluation.challenger_evaluation import ChallengerEvaluationError, evaluate_challenger
    from modelops.core.serving.prediction_cache import prune_prediction_caches

    name = customisation_of(context)
    lake, store = lakes.of(name), mlflow.of(name)
    if lake.generative:
        return evaluate_generative(context, lake, store, base_model.describe(name), policies.of(name),
                                   _max_prompt_tokens(policies.of(name)))
    registry = store.registry()
    challenger_version = lake.read_record("lora_adapter")["version"]
    curated, _ = read_curated(lake)
    try:
        found = evaluate_challenger(registry, challenger_version, curated, Path(policies.of(name).evaluation_config),
                                    _classifier_loader(registry, lake, base_model.describe(name)),
                                    Path(lake.home) / "evaluations" / f"v{challenger_version}",
                                    store.dagster_run_tags(context.run_id))
    except (ChallengerEvaluationError, ConfigError) as error:
        raise dg.Failure(str(error)) from error
    for warning in found.warnings:
        context.log.warning(warning)
    prune_prediction_caches(_predictions_dir(lake), {challenger_version, str(found.champion_version)})
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
    if found.serving is not None:
        metadata.update({"serving_variant": found.serving.variant, "serving_variant_reason": found.serving.reason,
                         "serving_variants": dg.MetadataValue.md(found.serving.markdown(challenger))})
    if challenger.abstention is not None:
        metadata.update({"abstention_threshold": challenger.abstention.threshold,
                         "abstention_coverage": challenger.abstention.coverage,
                         "abstention_covered_accuracy": challenger.abstention.covered_accuracy,
                         "challenger_cost_per_1000_with_fallback": challenger.abstention.cost_per_1000,
                         "abstention": dg.MetadataValue.md(found.abstention_table)})
    if champion is not None:
        metadata.update({"champion_macro_f1": champion.macro_f1,
                         "champion_cost_per_1000": champion.expected_cost_per_1000})
    if found.recent_challenger_macro_f1 is not None:
        metadata["recent_traffic_challenger_macro_f1"] = found.recent_challenger_macro_f1
    return metadata


def champion(context: dg.AssetExecutionContext, lakes: DataLakes, base_model: BaseModel, mlflow: MlflowRegistries,
             policies: PolicyFiles) -> dg.MaterializeResult:
    """The model version serving production: the `champion` alias moves here only when the gate passed; its drift
    thresholds are calibrated on its own held-out rows for the drift policy's false-alarm rate."""
    from modelops.core.config_files import ConfigError, load_config
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.core.registry.promotion import PromotionRefused, promote_champion

    name = customisation_of(context)
    lake, registry = lakes.of(name), mlflow.of(name).registry()
    record = lake.read_record("evaluation")
    try:
        promoted = promote_generative_champion(lake, registry, record, base_model.describe(name), policies.of(name),
                                               _max_prompt_tokens(policies.of(name))) if lake.generative else \
            promote_champion(registry, record, read_curated(lake)[0],
                             _served_loader(registry, lake, base_model.describe(name)), lake.settings.reference_dir,
                             load_config(Path(policies.of(name).drift_config), DriftConfig))
    except (PromotionRefused, ConfigError) as refused:
        raise dg.Failure(str(refused)) from refused
    lake.write_record("champion", {"version": promoted.version, "previous": promoted.previous,
                                   "promoted_at": time.time()})
    context.log.info(f"champion is now v{promoted.version} (previous: {promoted.previous})")
    if promoted.calibration is None:
        context.log.warning(f"drift monitoring is off for v{promoted.version}: {promoted.calibration_error}")
    else:
        context.log.info(f"drift thresholds calibrated on {promoted.reference_rows} held-out rows in "
                         f"{promoted.calibration.seconds:.1f}s")
    return dg.MaterializeResult(metadata=_champion_metadata(promoted, record, registry))


def _champion_metadata(promoted: "Promotion", record: dict, registry: "ModelRegistry") -> dict:
    """The new champion, its metrics, the promotion history and its drift calibration (or why there is none)."""
    import pandas as pd

    if promoted.calibration is None:
        drift: dict[str, dg.RawMetadataValue] = {"drift_calibration": promoted.calibration_error}
    else:
        drift = {"drift_false_alarm_rate": promoted.calibration.false_alarm_rate,
                 "drift_calibration_seconds": promoted.calibration.seconds,
                 "drift_calibration": dg.MetadataValue.md(promoted.calibration.markdown())}
    history = pd.DataFrame([e.__dict__ for e in registry.promotion_history()])
    metrics = record["challenger_metrics"]  # a classifier's or a generative model's (GenerationReport.metrics)
    headline = {k: metrics[k] for k in HEADLINE_METRICS if k in metrics}
    return {"model_version": promoted.version, "previous_champion": str(promoted.previous),
            "drift_reference_rows": promoted.reference_rows, **headline,
            "promotion_history": dg.MetadataValue.md(frame_table(history, index=False)), **drift}
