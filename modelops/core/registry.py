"""MLflow tracking and model registry: runs, adapter versions, champion/challenger aliases, promotion history."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
PROMOTION_TAG_PREFIX = "promotion."
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class RegistryError(RuntimeError):
    """The registry cannot do what was asked; the message says what is missing."""


@dataclass(frozen=True)
class PromotionEvent:
    """One move of the champion alias."""

    timestamp: float
    action: str  # "promote" | "rollback"
    version: str
    previous: str | None
    reason: str


def validate_model_name(name: str) -> str:
    """Registered-model names become paths and URIs: allow letters, digits, '.', '_', '-' only."""
    if not _NAME_PATTERN.match(name) or ".." in name:
        raise RegistryError(f"Invalid registered-model name {name!r}: use letters, digits, '.', '_' or '-' (max 100).")
    return name


def code_version() -> str:
    """The git commit of the modelops checkout (with '-dirty' for local changes), else the package version."""
    from modelops import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"modelops-{__version__}"


class ModelRegistry:
    """One registered model in one MLflow tracking/registry store (a SQLite file by default, or a server URI)."""

    def __init__(self, tracking_uri: str, model_name: str, artifact_root: Path | None = None,
                 experiment_name: str = "modelops", ui_url: str = "http://127.0.0.1:5000") -> None:
        self.tracking_uri = tracking_uri
        self.model_name = validate_model_name(model_name)
        self.artifact_root = artifact_root
        self.experiment_name = experiment_name
        self.ui_url = ui_url.rstrip("/")
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is not None:
                self._experiment_id = found.experiment_id
            else:
                location = self.artifact_root.resolve().as_uri() if self.artifact_root else None
                self._experiment_id = self.client.create_experiment(self.experiment_name, artifact_location=location)
        return self._experiment_id

    @contextmanager
    def run(self, run_name: str, tags: dict[str, str]) -> Iterator[str]:
        """An MLflow run that ends FINISHED, or FAILED (re-raising) when the body raises."""
        run = self.client.create_run(self.experiment_id, run_name=run_name,
                                     tags={"modelops.code_version": code_version(), **tags})
        run_id = run.info.run_id
        try:
            yield run_id
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")

    def run_url(self, run_id: str) -> str:
        """Link to the run in the MLflow UI (`modelops mlflow-ui` serves it)."""
        return f"{self.ui_url}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step or 0) for k, v in metrics.items()])

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifacts(self, run_id: str, local_dir: Path, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, str(local_dir), artifact_path)

    def log_artifact(self, run_id: str, local_file: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(local_file), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def register_adapter(self, run_id: str, adapter_dir: Path, tags: dict[str, str]) -> str:
        """Log the adapter folder as run artifacts, create a model version from it and alias it `challenger`."""
        from mlflow.exceptions import MlflowException

        self.log_artifacts(run_id, adapter_dir, "adapter")
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            self.client.create_registered_model(self.model_name, description="LoRA adapters managed by modelops")
        source = f"{self.client.get_run(run_id).info.artifact_uri}/adapter"
        version = self.client.create_model_version(self.model_name, source=source, run_id=run_id, tags=tags).version
        self.client.set_registered_model_alias(self.model_name, CHALLENGER, version)
        log.info("registered %s version %s as %s", self.model_name, version, CHALLENGER)
        return str(version)

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at, or None when the alias (or the model) does not exist yet."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException:
            return None

    def version_info(self, version: str) -> dict[str, Any]:
        """Tags and run of a model version."""
        mv = self.client.get_model_version(self.model_name, version)
        return {"version": str(mv.version), "run_id": mv.run_id, "source": mv.source, "tags": dict(mv.tags)}

    def download_adapter(self, version: str, destination: Path) -> Path:
        """Fetch a version's adapter folder (safetensors + manifests) into `destination`."""
        destination.mkdir(parents=True, exist_ok=True)
        run_id = self.client.get_model_version(self.model_name, version).run_id
        return Path(self.client.download_artifacts(run_id, "adapter", str(destination)))

    def _record(self, action: str, version: str, previous: str | None, reason: str) -> None:
        event = {"action": action, "version": version, "previous": previous, "reason": reason[:4000]}
        self.client.set_registered_model_tag(self.model_name, f"{PROMOTION_TAG_PREFIX}{time.time():.6f}", json.dumps(event))

    def promote(self, version: str, reason: str) -> str | None:
        """Move `champion` to `version`; remember the previous champion for rollback. Returns the previous one."""
        previous = self.alias_version(CHAMPION)
        if previous is not None:
            self.client.set_model_version_tag(self.model_name, version, "previous_champion", previous)
        self.client.set_registered_model_alias(self.model_name, CHAMPION, version)
        self._record("promote", version, previous, reason)
        log.info("promoted %s version %s to champion (previous: %s)", self.model_name, version, previous)
        return previous

    def rollback(self, reason: str = "manual rollback") -> str:
        """Restore the champion that preceded the current one; returns the restored version."""
        current = self.alias_version(CHAMPION)
        if current is None:
            raise RegistryError(f"{self.model_name} has no champion to roll back from.")
        previous = self.version_info(current)["tags"].get("previous_champion")
        if not previous:
            raise RegistryError(f"{self.model_name} version {current} is the first champion; there is nothing to roll back to.")
        self.client.set_registered_model_alias(self.model_name, CHAMPION, previous)
        self.client.set_model_version_tag(self.model_name, current, "rolled_back", "true")
        self._record("rollback", previous, current, reason)
        return previous

    def promotion_history(self) -> list[PromotionEvent]:
        """Every move of the champion alias, oldest first."""
        from mlflow.exceptions import MlflowException

        try:
            tags = self.client.get_registered_model(self.model_name).tags
        except MlflowException:
            return []
        events = []
        for key, value in tags.items():
            if key.startswith(PROMOTION_TAG_PREFIX):
                data = json.loads(value)
                events.append(PromotionEvent(float(key[len(PROMOTION_TAG_PREFIX):]), data["action"], data["version"],
                                             data["previous"], data["reason"]))
        return sorted(events, key=lambda e: e.timestamp)
