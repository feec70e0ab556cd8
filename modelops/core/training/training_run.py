"""One tracked training run around the training itself: its inputs (an incremental run's warm start), its MLflow run
(params, config, the drift report that caused it), the training process it hands a `TrainingJob` to, the registered
adapter; and the clean-up of runs whose process was killed."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelops.core.monitoring.drift_config import NO_DRIFT
from modelops.core.tags import MlflowArtifact, MlflowTag
from modelops.core.training.train import (
    TRAINING_CONFIG_ARTIFACT,
    TrainingConfigError,
    incremental_training_set,
    incremental_validation_set,
    new_rows,
    partial_dir,
    seen_rows,
)
from modelops.core.training.training_config import TrainingConfig

if TYPE_CHECKING:
    import pandas as pd

    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.training.base_model import BaseModelInfo


class Log(Protocol):
    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...


@dataclass(frozen=True)
class TrainingJob:
    """Everything the training process needs, as plain values (it travels as JSON in the Pipes extras)."""

    train_path: str  # parquet with text,label
    validation_path: str
    base_path: str
    base_task_type: str
    training: dict[str, Any]  # TrainingConfig.model_validate input
    output_dir: str
    tracking_uri: str
    model_name: str
    mlflow_run_id: str
    error_path: str  # where the first process writes why it failed, for the launching asset's error message
    init_adapter: str | None = None
    owner_pid: int | None = None  # the launching run worker, when on this host: training stops if it dies
    calibration_path: str | None = None  # incremental: the whole validation split the temperature is fitted on

    def to_extras(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_extras(cls, extras: dict[str, Any]) -> TrainingJob:
        return cls(**{name: extras[name] for name in cls.__dataclass_fields__ if name in extras})


@dataclass(frozen=True)
class TrainingRequest:
    """What one training run trains (the policy, the curated set, the base) and where its files and links go."""

    config: TrainingConfig
    curated: pd.DataFrame  # with a split column: train and validation rows are used
    content_hash: str  # the curated set's
    base: BaseModelInfo
    home: Path  # the customisation's state folder: adapters/, training/
    curated_dir: Path  # where earlier curated sets are (an incremental run replays the champion's)
    run_tags: dict[str, str]  # MLflow tags linking the run to what launched it
    launcher: str = "subprocess"
    processes: int = 1
    drift_report_run: str | None = None  # the MLflow run of the drift check that caused this run, if any
    drift_severity: str | None = None  # that drift's severity (moderate, severe): an incremental run's replay share


@dataclass(frozen=True)
class TrainedAdapter:
    """A registered adapter version, where it is, and what its training process reported."""

    version: str
    run_id: str
    adapter_dir: Path
    mode: str
    train_rows: int
    reported: dict[str, Any]
    replay_rows: int | None = None  # an incremental run's rows replayed from the champion's data

    @property
    def adapter_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.adapter_dir.glob("*.safetensors"))


def train_adapter(request: TrainingRequest, registry: ModelRegistry, launch: Callable[[TrainingJob], dict[str, Any]],
                  log: Log) -> TrainedAdapter:
    """Train in an MLflow run: `launch` runs the training process for the job and returns what it reported; the
    adapter is registered with its data, base and mode. A failed run leaves no adapter folder and no inputs behind.
    TrainingConfigError when an incremental run cannot warm-start."""
    from modelops.core.atomic import write_parquet_atomic
    from modelops.core.data.curate import content_hash
    from modelops.core.data.instructions import instructions_hash

    config, base, curated = request.config, request.base, request.curated
    set_hash = instructions_hash if base.task_type == "causal-lm" else content_hash
    train, split = curated[curated["split"] == "train"], curated[curated["split"] == "validation"]
    train, validation, warm = _warm_start(request, train, split, registry, log)
    config = config.model_copy(update={"mode": "incremental" if warm else "full"})
    for folder, killed in remove_leftovers_of_killed_runs(registry, request.home):
        log.info(f"removed {folder}, left by killed MLflow run {killed}")
    tags = {**request.run_tags, MlflowTag.TRAINING_MODE: config.mode, MlflowTag.DATA_CONTENT_HASH: request.content_hash,
            MlflowTag.BASE_SHA256: base.sha256}
    with registry.run(f"train-{config.mode}", tags) as run_id:
        work = request.home / "training" / run_id  # the training process's inputs and error report
        registry.log_params(run_id, {**config.to_params(), "base_name": base.name, "base_sha256": base.sha256,
                                     "data_content_hash": request.content_hash, "train_rows": len(train),
                                     "validation_rows": len(validation), "warm_start": warm is not None,
                                     "training_processes": request.processes, "training_launcher": request.launcher,
                                     "train_set_hash": set_hash(train),
                                     "validation_set_hash": set_hash(validation),
                                     "drift_severity": request.drift_severity or NO_DRIFT,
                                     **({"new_rows": warm.new_rows, "replay_rows": warm.replay_rows} if warm else {})})
        registry.log_text(run_id, config.model_dump_json(indent=2), TRAINING_CONFIG_ARTIFACT)
        if request.drift_report_run:  # a drift-triggered run keeps the report of its drift
            registry.copy_artifact(request.drift_report_run, MlflowArtifact.DRIFT_REPORT, run_id)
        output = request.home / "adapters" / run_id
        job = TrainingJob(
            train_path=str(write_parquet_atomic(train, work / "train.parquet")),
            validation_path=str(write_parquet_atomic(validation, work / "validation.parquet")),
            calibration_path=str(write_parquet_atomic(split, work / "calibration.parquet")) if warm else None,
            base_path=str(base.path), base_task_type=base.task_type, training=config.model_dump(),
            output_dir=str(output), tracking_uri=registry.tracking_uri, model_name=registry.model_name,
            mlflow_run_id=run_id, error_path=str(work / "error.txt"),
            init_adapter=str(warm.adapter) if warm else None,
            owner_pid=os.getpid() if request.launcher == "subprocess" else None)
        try:
            reported = launch(job)
            version = registry.register_adapter(run_id, output, {
                "data_content_hash": request.content_hash, "base_name": base.name, "base_sha256": base.sha256,
                "mode": config.mode, "dagster_run_id": request.run_tags.get(MlflowTag.DAGSTER_RUN_ID, ""),
                "seed": str(config.seed),
                **({"warm_start_version": warm.champion} if warm else {})})
        except BaseException:  # a failed run keeps no adapter folder (the registry holds what was registered)
            for folder in (output, partial_dir(output)):
                shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return TrainedAdapter(version, run_id, output, config.mode, len(train), reported,
                          warm.replay_rows if warm else None)


def _warm_start(request: TrainingRequest, train: pd.DataFrame, validation: pd.DataFrame, registry: ModelRegistry,
                log: Log) -> tuple[pd.DataFrame, pd.DataFrame, IncrementalInputs | None]:
    """An incremental run's training and validation rows and the champion it warm-starts from; None for a full run
    and for an incremental one without a champion (it trains from the base on every row)."""
    if request.config.mode != "incremental":
        return train, validation, None
    found = incremental_inputs(train, validation, registry, request.home, request.curated_dir, request.config,
                               request.base.sha256, request.drift_severity)
    if found.adapter is None:
        log.warning("no champion yet: incremental run falls back to training from the base")
        return found.train, found.validation, None
    share = request.config.replay_share.share(request.drift_severity)
    log.info(f"incremental: {len(found.train)} examples ({found.new_rows} new, {found.replay_rows} replayed: "
             f"{found.replay_rows / len(found.train):.0%}; {request.drift_severity or 'no'} drift severity, replay "
             f"share {share:.0%}) on champion v{found.champion}; validating on {len(found.validation)} of "
             f"{len(validation)} validation rows, mixed alike")
    return found.train, found.validation, found


@dataclass(frozen=True)
class IncrementalInputs:
    """New + replayed examples (training and validation) and the champion adapter they warm-start from (None: no
    champion, train from the base on every example)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    adapter: Path | None
    champion: str | None
    new_rows: int

    @property
    def replay_rows(self) -> int:
        return len(self.train) - self.new_rows


def incremental_inputs(curated_train: pd.DataFrame, curated_validation: pd.DataFrame, registry: ModelRegistry,
                       home: Path, curated_dir: Path, config: TrainingConfig, base_sha256: str,
                       severity: str | None = None) -> IncrementalInputs:
    """The champion's adapter (downloaded under `home`/adapters) and the new rows plus the replay sample `config`
    asks for, after drift of `severity`, of the rows it was trained on (training and validation); TrainingConfigError
    when it cannot warm-start (another base, its training data gone)."""
    import pandas as pd

    champion = registry.alias_version("champion")
    if champion is None:
        return IncrementalInputs(curated_train, curated_validation, None, None, len(curated_train))
    info = registry.version_info(champion)
    if info["tags"].get("base_sha256", base_sha256) != base_sha256:
        raise TrainingConfigError(
            f"The champion v{champion} runs on base {info['tags'].get('base_name')} (sha256 "
            f"{info['tags']['base_sha256'][:12]}), not on the configured base: an adapter cannot warm-start across "
            "bases. Set base_model_path to the champion's base (after `modelops migrate`) or run a full retrain.")
    adapter = registry.download_adapter(champion, home / "adapters" / f"champion-v{champion}")
    seen_path = curated_dir / f"{info['tags'].get('data_content_hash', '')}.parquet"
    if not seen_path.is_file():
        raise TrainingConfigError(f"The champion's training data {seen_path} is gone; run a full retrain instead.")
    # an instruction set's response plays the label's part: a prompt is new, or seen with another response
    target = "response" if "response" in curated_train.columns else "label"
    labelled, back = {target: "label"}, {"label": target}
    seen = seen_rows(pd.read_parquet(seen_path, columns=["id", target]).rename(columns=labelled))
    frame = incremental_training_set(curated_train.rename(columns=labelled), seen, config, severity)
    validation = incremental_validation_set(curated_validation.rename(columns=labelled), seen, config, severity)
    return IncrementalInputs(frame.rename(columns=back), validation.rename(columns=back), adapter, champion,
                             int(new_rows(frame, seen).sum()))


def remove_leftovers_of_killed_runs(registry: ModelRegistry, home: Path) -> list[tuple[Path, str]]:
    """Finalise the MLflow runs of killed training processes and delete what they left on disk: their inputs
    (`training/<mlflow run>`) and unregistered adapter folders (`adapters/<mlflow run>` and its `.partial`).
    Returns (folder, MLflow run id) of each folder removed."""
    removed = []
    for run in registry.finalise_orphaned_runs():
        adapter = home / "adapters" / run.info.run_id
        leftovers = [adapter, partial_dir(adapter), home / "training" / run.info.run_id]
        for folder in (f for f in leftovers if f.exists()):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append((folder, run.info.run_id))
    return removed
