"""MLflow tracking and model registry: runs, adapter versions, champion/challenger aliases, promotion history."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.core.defaults import MLFLOW_UI_URL
from modelops.core.registry.store import (
    RegistryError,
    RegistryUnavailableError,
    check_adapter_complete,
    database_dialect,
    probe_database_store,
    shown_uri,
)
from modelops.core.tags import MlflowTag

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
PROMOTION_TAG_PREFIX = "promotion."
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

# MLflow 3.x retries every HTTP call 7 times with backoff factor 2 (about 4 minutes) and waits up to 120 s for each
# answer, so a training run or the server's reload probe would hang for minutes on a store that is down. These
# defaults give up after about 6-9 s on a refused connection; variables of the same names set by the user win.
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# Error codes that mean "no such thing" or "bad request": answers of a working store, not store failures.
_ANSWER_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS",
                           "INVALID_STATE", "BAD_REQUEST"})
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
_OPEN_RUNS: set[str] = set()  # ids of the runs this process has open (see finalise_orphaned_runs)
_OPEN_RUNS_LOCK = threading.Lock()  # a run is created and recorded as open in one step, never seen in between


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

    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"modelops-{__version__}"


def _process_owner() -> str:
    """This process as the owner tag records it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str, run_id: str) -> bool | None:
    """Whether the process that created a run still has it: None when it ran on another host (cannot tell)."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return run_id in _OPEN_RUNS
    return pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (owned by any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class ModelRegistry:
    """One registered model in one MLflow tracking/registry store (a SQLite file by default, or a server URI).

    Store failures (unreachable server, unopenable or read-only database) raise RegistryUnavailableError; HTTP calls
    give up after a bounded number of retries (HTTP_RETRY_DEFAULTS).
    """

    def __init__(self, tracking_uri: str, model_name: str, artifact_root: Path | None = None,
                 experiment_name: str = "modelops", ui_url: str = MLFLOW_UI_URL) -> None:
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
            for name, value in HTTP_RETRY_DEFAULTS.items():
                os.environ.setdefault(name, value)
            if database_dialect(self.tracking_uri):
                probe_database_store(self.tracking_uri)
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    @contextmanager
    def _store_call(self, action: str) -> Iterator[None]:
        """Raise RegistryUnavailableError (naming the store and the fix) when the store itself fails during `action`.

        Answers of a working store (not found, invalid request) pass through unchanged.
        """
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            if exc.error_code in _ANSWER_CODES:
                raise
            if database_dialect(self.tracking_uri):
                hint = "Check that the database is reachable and writable"
            else:
                retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRY_DEFAULTS[
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
                hint = f"Gave up after {retries} retries; check that the MLflow server runs and is reachable"
            raise RegistryUnavailableError(
                f"MLflow store {shown_uri(self.tracking_uri)} could not {action}: "
                f"{str(exc.message).splitlines()[0][:500]}. {hint}, or set MODELOPS_MLFLOW_TRACKING_URI to a "
                "working store."
            ) from exc

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            with self._store_call(f"find or create experiment {self.experiment_name!r}"):
                found = self.client.get_experiment_by_name(self.experiment_name)
                if found is not None:
                    self._experiment_id = found.experiment_id
                else:
                    location = self.artifact_root.resolve().as_uri() if self.artifact_root else None
                    self._experiment_id = self.client.create_experiment(self.experiment_name,
                                                                        artifact_location=location)
        return self._experiment_id

    @contextmanager
    def run(self, run_name: str, tags: dict[str, str]) -> Iterator[str]:
        """An MLflow run that ends FINISHED, or FAILED (re-raising) when the body raises.

        Runs that a killed process left RUNNING are marked KILLED first (finalise_orphaned_runs). A failure to mark
        this run FAILED is logged, never raised over the body's own error; the next run then finalises it.
        """
        self.finalise_orphaned_runs()
        tags = {MlflowTag.CODE_VERSION: code_version(), MlflowTag.OWNER: _process_owner(), **tags}
        with _OPEN_RUNS_LOCK, self._store_call(f"start run {run_name!r}"):
            run_id = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags).info.run_id
            _OPEN_RUNS.add(run_id)
        try:
            yield run_id
        except BaseException:
            _OPEN_RUNS.discard(run_id)
            try:
                self.client.set_terminated(run_id, "FAILED")
            except Exception:
                log.exception("could not mark MLflow run %s FAILED; the next run will mark it KILLED", run_id)
            raise
        _OPEN_RUNS.discard(run_id)
        with self._store_call(f"finish run {run_id}"):
            self.client.set_terminated(run_id, "FINISHED")

    def finalise_orphaned_runs(self) -> list[Run]:
        """Mark KILLED the runs left RUNNING by a process of this host that is gone; returns them (as found, with
        their tags).

        A process killed mid-run (SIGKILL, out-of-memory killer, power loss) never ends its MLflow run. Every run
        records its owner (host and pid, `MlflowTag.OWNER`); the next run started on the same host terminates RUNNING
        runs whose owner process no longer exists (or is this process but has closed the run) as KILLED, with the
        reason in `MlflowTag.END_REASON`. Runs of other hosts, and runs without an owner tag, are left alone: their
        liveness cannot be checked from here. A reused pid only delays finalisation until that process ends.
        """
        with _OPEN_RUNS_LOCK, self._store_call("look for runs left RUNNING by killed processes"):
            running = self.search_runs("attributes.status = 'RUNNING'", max_results=200)
            orphans = [found for found in running if MlflowTag.OWNER in found.data.tags
                       and _owner_alive(found.data.tags[MlflowTag.OWNER], found.info.run_id) is False]
        for found in orphans:
            owner = found.data.tags[MlflowTag.OWNER]
            reason = (f"process {owner} ended without finishing the run (killed); marked KILLED by "
                      f"{_process_owner()} at {datetime.now(UTC).isoformat(timespec='seconds')}")
            with self._store_call(f"mark orphaned run {found.info.run_id} KILLED"):
                self.client.set_tag(found.info.run_id, MlflowTag.END_REASON, reason)
                self.client.set_terminated(found.info.run_id, "KILLED")
            log.warning("MLflow run %s (%s): %s", found.info.run_id, found.info.run_name, reason)
        return orphans

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

    def set_version_tags(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, str(value))

    def get_run(self, run_id: str) -> Run:
        return self.client.get_run(run_id)

    def search_runs(self, filter_string: str, newest_first: bool = False, max_results: int = 1000) -> list[Run]:
        """Runs of this model's experiment matching an MLflow filter (`tags.`...`` = '...')."""
        order = ["attributes.start_time DESC"] if newest_first else None
        return list(self.client.search_runs([self.experiment_id], filter_string, order_by=order,
                                            max_results=max_results))

    def download_artifact(self, run_id: str, artifact_path: str, destination: Path) -> Path:
        return Path(self.client.download_artifacts(run_id, artifact_path, str(destination)))

    def log_artifacts(self, run_id: str, local_dir: Path, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, str(local_dir), artifact_path)

    def log_artifact(self, run_id: str, local_file: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(local_file), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def copy_artifact(self, source_run_id: str, artifact_file: str, run_id: str) -> None:
        """Log another run's artifact `artifact_file` into `run_id` under the same path."""
        import tempfile

        from mlflow.artifacts import download_artifacts

        with tempfile.TemporaryDirectory() as tmp:
            local = download_artifacts(run_id=source_run_id, artifact_path=artifact_file, dst_path=tmp,
                                       tracking_uri=self.tracking_uri)
            self.client.log_artifact(run_id, local, str(Path(artifact_file).parent))

    def register_adapter(self, run_id: str, adapter_dir: Path, tags: dict[str, str]) -> str:
        """Log a complete adapter folder as run artifacts, create a model version from it and alias it `challenger`."""
        from mlflow.exceptions import MlflowException

        check_adapter_complete(adapter_dir)
        with self._store_call(f"register the adapter of run {run_id}"):
            self.log_artifacts(run_id, adapter_dir, "adapter")
            try:
                self.client.get_registered_model(self.model_name)
            except MlflowException as exc:
                if exc.error_code not in _NOT_FOUND_CODES:
                    raise
                self.client.create_registered_model(self.model_name, description="LoRA adapters managed by modelops")
            source = f"{self.client.get_run(run_id).info.artifact_uri}/adapter"
            version = self.client.create_model_version(self.model_name, source=source, run_id=run_id,
                                                       tags=tags).version
            self.client.set_registered_model_alias(self.model_name, CHALLENGER, version)
        log.info("registered %s version %s as %s", self.model_name, version, CHALLENGER)
        return str(version)

    def champion_version(self) -> str:
        """The version the `champion` alias points at; RegistryError when there is none yet (what a server loads)."""
        version = self.alias_version("champion")
        if version is None:
            raise RegistryError(f"{self.model_name} has no 'champion' version yet; train and promote a model first.")
        return version

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at, or None when the alias (or the model) does not exist yet.

        A store that cannot answer raises RegistryUnavailableError: "unknown" must never read as "no champion".
        """
        from mlflow.exceptions import MlflowException

        try:
            with self._store_call(f"read the {alias!r} alias of {self.model_name}"):
                return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                return None
            raise

    def version_info(self, version: str) -> dict[str, Any]:
        """Tags and run of a model version; RegistryError when there is no such version."""
        from mlflow.exceptions import MlflowException

        try:
            with self._store_call(f"read version {version} of {self.model_name}"):
                mv = self.client.get_model_version(self.model_name, version)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES or exc.error_code == "INVALID_PARAMETER_VALUE":
                raise RegistryError(f"{self.model_name} has no version {version!r}.") from exc
            raise
        return {"version": str(mv.version), "run_id": mv.run_id, "source": mv.source, "tags": dict(mv.tags)}

    def download_adapter(self, version: str, destination: Path) -> Path:
        """Fetch a version's adapter folder (safetensors + manifests) into `destination`."""
        destination.mkdir(parents=True, exist_ok=True)
        run_id = self.client.get_model_version(self.model_name, version).run_id
        return Path(self.client.download_artifacts(run_id, "adapter", str(destination)))

    def _record(self, action: str, version: str, previous: str | None, reason: str) -> None:
        event = {"action": action, "version": version, "previous": previous, "reason": reason[:4000]}
        self.client.set_registered_model_tag(self.model_name, f"{PROMOTION_TAG_PREFIX}{time.time():.6f}",
                                             json.dumps(event))

    def promote(self, version: str, reason: str) -> str | None:
        """Move `champion` to `version`; remember the previous champion for rollback. Returns the previous one."""
        previous = self.alias_version(CHAMPION)
        with self._store_call(f"promote version {version} to {CHAMPION}"):
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
            raise RegistryError(f"{self.model_name} version {current} is the first champion; there is nothing to "
                                "roll back to.")
        with self._store_call(f"roll {CHAMPION} back to version {previous}"):
            self.client.set_registered_model_alias(self.model_name, CHAMPION, previous)
            self.client.set_model_version_tag(self.model_name, current, "rolled_back", "true")
            self._record("rollback", previous, current, reason)
        return previous

    def promotion_history(self) -> list[PromotionEvent]:
        """Every move of the champion alias, oldest first."""
        from mlflow.exceptions import MlflowException

        try:
            with self._store_call(f"read the promotion history of {self.model_name}"):
                tags = self.client.get_registered_model(self.model_name).tags
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                return []
            raise
        events = []
        for key, value in tags.items():
            if key.startswith(PROMOTION_TAG_PREFIX):
                data = json.loads(value)
                events.append(PromotionEvent(float(key[len(PROMOTION_TAG_PREFIX):]), data["action"], data["version"],
                                             data["previous"], data["reason"]))
        return sorted(events, key=lambda e: e.timestamp)
