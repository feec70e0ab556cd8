"""Dagster resources, one per concern, injected by parameter name: `lakes` (where data lives), `mlflow` (which
MLflow store and registered model), `policies` (which policy files), `base_model` and `training` (the launcher).

The first three hold one entry per customisation (`lakes.of(name)`); an asset or check finds its customisation's
name in its asset key (`customisation_of(context)`). The base model and the training launcher are shared.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from modelops.core.defaults import DAGSTER_UI_URL, MAX_TEXT_CHARS, MLFLOW_UI_URL
from modelops.core.tags import MlflowTag
from modelops.settings import Settings, TrainingLauncherSettings

if TYPE_CHECKING:
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.training.base_model import BaseModelInfo
    from modelops.core.training.training_run import TrainingJob

TRAINING_MODULE = "modelops.app.training_process"


@dataclass(frozen=True)
class CustomisationKeys:
    """The names of one customisation's Dagster objects: asset keys under its prefix, partitions, ops and jobs."""

    name: str

    @property
    def traffic_batches(self) -> str:
        """The dynamic partitions (one per captured traffic batch) of this customisation's production_traffic."""
        return f"{self.name}_traffic_batches"

    def asset(self, asset: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, asset])

    def job(self, job: str) -> str:
        return f"{self.name}_{job}"

    def check_run_config(self, check: str, **config: Any) -> dict[str, Any]:
        """Run config of one of this customisation's asset checks on production_traffic."""
        return {"ops": {f"{self.name}__production_traffic_{check}": {"config": config}}}

    def run_config(self, **configs: dict[str, Any]) -> dict[str, Any]:
        """Run config giving each named asset of this customisation its config, e.g. run_config(lora_adapter={...})."""
        return {"ops": {f"{self.name}__{asset}": {"config": config} for asset, config in configs.items()}}


def customisation_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> str:
    """The customisation an asset or check runs for: the first part of its asset key (CustomisationKeys.asset)."""
    if isinstance(context, dg.AssetCheckExecutionContext):
        return context.check_specs[0].asset_key.path[0]
    return context.asset_key.path[0]


class DataLake(dg.Config):
    """One customisation's folders: its user data (raw, production traffic, feedback, quarantine) and its state
    (`home`: curated sets, adapters, records)."""

    data_dir: str
    home: str
    max_text_chars: int = MAX_TEXT_CHARS
    text_column: str = "text"
    label_column: str = "label"
    task: str = "classifier"  # Settings.task: "classifier" (text -> label) or "causal-lm" (prompt -> response)

    @property
    def generative(self) -> bool:
        return self.task == "causal-lm"

    @property
    def settings(self) -> Settings:
        return Settings(home=Path(self.home), data_dir=Path(self.data_dir), max_text_chars=self.max_text_chars)

    def record_path(self, name: str) -> Path:
        return Path(self.home) / "records" / f"{name}.json"

    def write_record(self, name: str, record: dict[str, Any]) -> Path:
        """Small JSON hand-over between assets (paths, versions, hashes), written atomically."""
        from modelops.core.atomic import write_text_atomic

        return write_text_atomic(json.dumps(record, indent=2, default=str), self.record_path(name))

    def read_record(self, name: str) -> dict[str, Any]:
        path = self.record_path(name)
        if not path.is_file():
            raise dg.Failure(f"{path} is missing: materialise the upstream asset '{name}' first.")
        return json.loads(path.read_text())


class OwnBase(dg.Config):
    """A customisation's own base model: a local Hugging Face folder and its task type (base_model.TASK_TYPES)."""

    path: str
    task_type: str = "sequence-classification"


class BaseModel(dg.ConfigurableResource):
    """The local Hugging Face base models adapters are trained on: `path` (empty: the shipped all-MiniLM-L6-v2) for
    every customisation but those with their own base in `customisations` (e.g. a causal-lm customisation's)."""

    path: str = ""
    customisations: dict[str, OwnBase] = {}

    def describe(self, customisation: str) -> BaseModelInfo:
        """The customisation's base: path, name, task and weights hash; a Failure naming what is wrong when it cannot
        be used."""
        from modelops.core.training.base_model import BaseModelError, describe_base_model
        from modelops.settings import default_base_model_path

        own = self.customisations.get(customisation)
        path = own.path if own else self.path
        try:
            return describe_base_model(Path(path) if path else default_base_model_path(),
                                       own.task_type if own else "sequence-classification")  # type: ignore[arg-type]
        except BaseModelError as exc:
            raise dg.Failure(str(exc)) from exc


class MlflowRegistry(dg.Config):
    """The MLflow tracking + model registry store and the registered-model name of this customisation."""

    tracking_uri: str
    model_name: str
    artifact_root: str = ""
    ui_url: str = MLFLOW_UI_URL
    dagster_ui_url: str = DAGSTER_UI_URL  # MLflow runs link back to the Dagster run that made them

    def dagster_run_tags(self, run_id: str) -> dict[str, str]:
        """MLflow tags naming the Dagster run (id and UI link) a training or evaluation run belongs to."""
        return {MlflowTag.DAGSTER_RUN_ID: run_id, MlflowTag.DAGSTER_RUN_URL: f"{self.dagster_ui_url}/runs/{run_id}"}

    def registry(self) -> ModelRegistry:
        from modelops.core.registry.registry import ModelRegistry

        root = Path(self.artifact_root) if self.artifact_root else None
        return ModelRegistry(self.tracking_uri, self.model_name, root, ui_url=self.ui_url)


class Policies(dg.Config):
    """Owner-editable policy files: training defaults, evaluation cost model + gate, drift policy, retrain guards."""

    training_config: str
    evaluation_config: str
    drift_config: str
    retrain_config: str


def _own(entries: dict[str, Any], name: str, concern: str) -> Any:
    if name not in entries:
        raise dg.Failure(f"No {concern} for customisation {name!r}; configured: {sorted(entries)}.")
    return entries[name]


class DataLakes(dg.ConfigurableResource):
    """Every customisation's DataLake, by customisation name."""

    customisations: dict[str, DataLake]

    def of(self, name: str) -> DataLake:
        return _own(self.customisations, name, "data lake")


class MlflowRegistries(dg.ConfigurableResource):
    """Every customisation's MLflow store and registered model, by customisation name."""

    customisations: dict[str, MlflowRegistry]

    def of(self, name: str) -> MlflowRegistry:
        return _own(self.customisations, name, "MLflow registry")


class PolicyFiles(dg.ConfigurableResource):
    """Every customisation's policy files, by customisation name."""

    customisations: dict[str, Policies]

    def of(self, name: str) -> Policies:
        return _own(self.customisations, name, "policy files")


class TrainingLauncher(dg.ConfigurableResource, TrainingLauncherSettings):
    """Where the training process runs, through Dagster Pipes: a local subprocess (default) or a Kubernetes pod.

    Its fields are the `training:` settings (MODELOPS_TRAINING_*). `processes` > 1 starts that many data-parallel
    processes with torchrun (one per GPU; on CPUs, Gloo). A pod mounts the volume claim that holds modelops's home and
    data folders at their usual path, and gets `gpus` GPUs.
    """

    def command(self, python: str = sys.executable) -> list[str]:
        if self.processes == 1:
            return [python, "-m", TRAINING_MODULE]
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={self.processes}",
                "-m", TRAINING_MODULE]

    def pod_spec(self) -> dict[str, Any]:
        """The training pod's spec: GPU limit and the shared data volume (PipesK8sClient adds image, command, env)."""
        container: dict[str, Any] = {"resources": {"limits": {"nvidia.com/gpu": str(self.gpus)}} if self.gpus else {}}
        spec: dict[str, Any] = {"containers": [container]}
        if self.volume_claim:
            if not self.mount_path:
                raise dg.Failure("training.mount_path (MODELOPS_TRAINING_MOUNT_PATH) must name where the volume claim "
                                 "holds modelops's home and data.")
            container["volumeMounts"] = [{"name": "modelops-data", "mountPath": self.mount_path}]
            spec["volumes"] = [{"name": "modelops-data", "persistentVolumeClaim": {"claimName": self.volume_claim}}]
        return spec

    def train(self, context: dg.AssetExecutionContext, job: TrainingJob) -> dict[str, Any]:
        """Run the training process for `job` and wait for it (its logs flow back through Pipes); the metadata it
        reported, or a Failure carrying the process's own error."""
        try:
            return dict(self._launch(context, job).get_materialize_result().metadata or {})
        except dg.Failure:
            raise
        except Exception as exc:
            error = Path(job.error_path)
            reason = error.read_text().strip() if error.is_file() else "see the process output in the run's logs"
            raise dg.Failure(f"The training process failed ({exc}): {reason}") from exc

    def _launch(self, context: dg.AssetExecutionContext, job: TrainingJob) -> dg.PipesClientCompletedInvocation:
        if self.launcher == "subprocess":
            client = dg.PipesSubprocessClient(forward_termination=True)
            return client.run(context=context, command=self.command(), extras=job.to_extras(),
                              env={"PYTHONUNBUFFERED": "1"})
        if not self.image:
            raise dg.Failure("training.launcher is kubernetes but training.image (MODELOPS_TRAINING_IMAGE) is empty: "
                             "name the code location image.")
        from dagster_k8s import PipesK8sClient

        return PipesK8sClient().run(context=context, image=self.image, command=self.command("python"),
                                    namespace=self.namespace, extras=job.to_extras(), base_pod_spec=self.pod_spec())


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources every customisation's assets, checks and sensor run with, by parameter name."""
    every = settings.customisation_settings()
    return {
        "lakes": DataLakes(customisations={c.customisation: DataLake(
            data_dir=str(c.data_dir), home=str(c.state), max_text_chars=c.max_text_chars, text_column=c.text_column,
            label_column=c.label_column, task=c.task) for c in every}),
        "mlflow": MlflowRegistries(customisations={c.customisation: MlflowRegistry(
            tracking_uri=c.tracking_uri, model_name=c.registered_model_name,
            artifact_root=str(c.mlflow_artifact_root or ""), dagster_ui_url=c.dagster_ui_url) for c in every}),
        "policies": PolicyFiles(customisations={c.customisation: Policies(
            training_config=str(c.training_config), evaluation_config=str(c.evaluation_config),
            drift_config=str(c.drift_config), retrain_config=str(c.retrain_config)) for c in every}),
        "base_model": BaseModel(path=str(settings.base_model_path or ""), customisations={
            c.customisation: OwnBase(path=str(c.base_model_path), task_type=c.base_task_type) for c in every
            if c.base_model_path != settings.base_model_path or c.task != "classifier"}),
        "training": TrainingLauncher(**settings.training.model_dump()),
    }
