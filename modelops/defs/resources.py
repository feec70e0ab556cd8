"""Dagster resources: where data lives, which base model, which MLflow store, which policy files.

Each customisation has its own DataLake, MlflowRegistry and Policies under keys named after it
(`<name>_lake`, `<name>_mlflow`, `<name>_policies`); the base model and the training launcher are shared.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

from modelops.core.tags import MlflowTag
from modelops.settings import Settings

if TYPE_CHECKING:
    from modelops.core.base_model import BaseModelInfo
    from modelops.core.registry import ModelRegistry
    from modelops.training_process import TrainingJob

TRAINING_MODULE = "modelops.training_process"


@dataclass(frozen=True)
class CustomisationKeys:
    """The names of one customisation's Dagster objects: asset keys under its prefix, resource keys, ops and jobs."""

    name: str

    @property
    def lake(self) -> str:
        return f"{self.name}_lake"

    @property
    def mlflow(self) -> str:
        return f"{self.name}_mlflow"

    @property
    def policies(self) -> str:
        return f"{self.name}_policies"

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

    def resources(self, context: Any) -> tuple[DataLake, MlflowRegistry, Policies]:
        """This customisation's lake, registry and policies from a run's or a sensor's context."""
        return (getattr(context.resources, self.lake), getattr(context.resources, self.mlflow),
                getattr(context.resources, self.policies))


class DataLake(dg.ConfigurableResource):
    """One customisation's folders: its user data (raw, production traffic, feedback, quarantine) and its state
    (`home`: curated sets, adapters, records)."""

    data_dir: str
    home: str
    max_text_chars: int = 2000
    text_column: str = "text"
    label_column: str = "label"

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


class BaseModel(dg.ConfigurableResource):
    """The local Hugging Face base model adapters are trained on (empty path: the shipped all-MiniLM-L6-v2)."""

    path: str = ""
    task_type: str = "sequence-classification"

    def describe(self) -> BaseModelInfo:
        from modelops.core.base_model import describe_base_model
        from modelops.settings import default_base_model_path

        return describe_base_model(Path(self.path) if self.path else default_base_model_path(), self.task_type)  # type: ignore[arg-type]


class MlflowRegistry(dg.ConfigurableResource):
    """The MLflow tracking + model registry store and the registered-model name of this customisation."""

    tracking_uri: str
    model_name: str
    artifact_root: str = ""
    ui_url: str = "http://127.0.0.1:5000"
    dagster_ui_url: str = "http://127.0.0.1:3000"  # MLflow runs link back to the Dagster run that made them

    def dagster_run_tags(self, run_id: str) -> dict[str, str]:
        """MLflow tags naming the Dagster run (id and UI link) a training or evaluation run belongs to."""
        return {MlflowTag.DAGSTER_RUN_ID: run_id, MlflowTag.DAGSTER_RUN_URL: f"{self.dagster_ui_url}/runs/{run_id}"}

    def registry(self) -> ModelRegistry:
        from modelops.core.registry import ModelRegistry

        root = Path(self.artifact_root) if self.artifact_root else None
        return ModelRegistry(self.tracking_uri, self.model_name, root, ui_url=self.ui_url)


class Policies(dg.ConfigurableResource):
    """Owner-editable policy files: training defaults, evaluation cost model + gate, drift thresholds, retrain guards."""

    training_config: str
    evaluation_config: str
    drift_config: str
    retrain_config: str


class TrainingLauncher(dg.ConfigurableResource):
    """Where the training process runs, through Dagster Pipes: a local subprocess (default) or a Kubernetes pod.

    Each field is set from the setting of the same name with a `training_` prefix (MODELOPS_TRAINING_*).

    `processes` > 1 starts that many data-parallel processes with torchrun (one per GPU; on CPUs, Gloo). A pod mounts
    the volume claim that holds modelops's home and data folders at their usual path, and gets `gpus` GPUs.
    """

    launcher: Literal["subprocess", "kubernetes"] = "subprocess"
    processes: int = 1
    image: str = ""
    namespace: str = "default"
    gpus: int = 0
    volume_claim: str = ""
    mount_path: str = ""

    def command(self, python: str = sys.executable) -> list[str]:
        if self.processes < 1:
            raise dg.Failure(f"training_processes must be >= 1, got {self.processes}")
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
                raise dg.Failure("training_mount_path must name where the volume claim holds modelops's home and data.")
            container["volumeMounts"] = [{"name": "modelops-data", "mountPath": self.mount_path}]
            spec["volumes"] = [{"name": "modelops-data", "persistentVolumeClaim": {"claimName": self.volume_claim}}]
        return spec

    def launch(self, context: dg.AssetExecutionContext, job: TrainingJob) -> dg.PipesClientCompletedInvocation:
        """Run the training process for `job` and wait for it; its logs and metadata flow back through Pipes."""
        if self.launcher == "subprocess":
            client = dg.PipesSubprocessClient(forward_termination=True)
            return client.run(context=context, command=self.command(), extras=job.to_extras(),
                              env={"PYTHONUNBUFFERED": "1"})
        if not self.image:
            raise dg.Failure("training_launcher is kubernetes but training_image is empty: name the code location image.")
        from dagster_k8s import PipesK8sClient

        return PipesK8sClient().run(context=context, image=self.image, command=self.command("python"),
                                    namespace=self.namespace, extras=job.to_extras(), base_pod_spec=self.pod_spec())


def customisation_resources(c: Settings) -> dict[str, dg.ConfigurableResource]:
    """One customisation's lake, MLflow registered model and policy files, under its keys."""
    keys = CustomisationKeys(c.customisation)
    return {
        keys.lake: DataLake(data_dir=str(c.data_dir), home=str(c.state), max_text_chars=c.max_text_chars,
                            text_column=c.text_column, label_column=c.label_column),
        keys.mlflow: MlflowRegistry(tracking_uri=c.tracking_uri, model_name=c.registered_model_name,
                                    artifact_root=str(c.mlflow_artifact_root or ""), dagster_ui_url=c.dagster_ui_url),
        keys.policies: Policies(training_config=str(c.training_config), evaluation_config=str(c.evaluation_config),
                                drift_config=str(c.drift_config), retrain_config=str(c.retrain_config)),
    }


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Every customisation's resources plus the shared base model and training launcher."""
    resources: dict[str, dg.ConfigurableResource] = {
        "base_model": BaseModel(path=str(settings.base_model_path or "")),
        "training": TrainingLauncher(**{name: getattr(settings, f"training_{name}")
                                        for name in TrainingLauncher.model_fields}),
    }
    for c in settings.customisation_settings():
        resources.update(customisation_resources(c))
    return resources
