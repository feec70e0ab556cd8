"""Fault injection on the loop: training killed mid-run, the MLflow store down or read-only, the sensor daemon killed
during and between ticks, a drift storm, a poisoned challenger. Nothing is lost, nothing is wrongly promoted.

Everything is real: MiniLM training, the MLflow SQLite store, Dagster instances and Dagster's own sensor-daemon and
run-queue code; faults are real too (SIGKILL, closed ports, read-only and unopenable databases).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from modelops.core.data.datagen import generate_corpus
from modelops.core.monitoring.traffic_writer import TrafficRecord, TrafficWriter
from modelops.core.registry.registry import ModelRegistry
from modelops.core.registry.store import RegistryError, RegistryUnavailableError
from modelops.core.tags import DagsterTag, MlflowTag
from modelops.core.training.reproduce import reproduce
from modelops.defs.customisation import customisation_defs
from modelops.defs.resources import MlflowRegistry, resources_from_settings
from modelops.settings import PACKAGE_CONFIG_DIR, Settings
from modelops_tests.helpers import free_port, label_feedback, override, write_captured_batch, write_drifted_batch

# Four of the generator's ten labels keep training short: ~420 examples, ~75 of them in the test split (the gate
# needs 50, the data checks 3 per label).
LABELS = ("billing", "shipping", "fraud_report", "product_question")
EPOCHS = 4
# Every installation here has the one default customisation (Settings without `customisations`).
SUPPORT = customisation_defs(Settings().customisation)
RETRAIN = [SUPPORT.curated_training_set, *SUPPORT.data_checks, *SUPPORT.training_assets]


def _node(asset: str) -> str:
    """The op name of one of SUPPORT's assets in a run's events."""
    return f"{SUPPORT.keys.name}__{asset}"


@dataclass(frozen=True)
class World:
    """An installation: curated data, a champion in the MLflow registry, a Dagster instance."""

    settings: Settings
    resources: dict
    instance: dg.DagsterInstance

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.settings.tracking_uri, self.settings.registered_model_name,
                             self.settings.mlflow_artifact_root)

    def record(self, name: str) -> dict:
        return json.loads((self.settings.state / "records" / f"{name}.json").read_text())


@contextmanager
def _installation(root: Path, template_db: Path) -> Iterator[World]:
    settings = Settings(home=root / "home", data_dir=root / "data")
    settings.home.mkdir(parents=True)
    shutil.copyfile(template_db, settings.home / "mlflow.db")
    settings.raw_dir.mkdir(parents=True)
    _tickets(1000, seed=0).to_csv(settings.raw_dir / "tickets.csv", index=False)
    with dg.instance_for_test() as instance:
        yield World(settings, resources_from_settings(settings), instance)


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory, mlflow_template_db: Path) -> Iterator[World]:
    """Curated data; an adapter trained for two steps, promoted by hand as champion v1, and its evaluation record."""
    with _installation(tmp_path_factory.mktemp("installation"), mlflow_template_db) as world:
        config = SUPPORT.keys.run_config(raw_examples={"source": "files"}, lora_adapter={"max_steps": 2})
        assert dg.materialize([SUPPORT.raw_examples, SUPPORT.curated_training_set, SUPPORT.lora_adapter],
                              resources=world.resources, instance=world.instance, run_config=config).success
        world.registry().promote("1", "champion for fault injection")
        assert dg.materialize([SUPPORT.evaluation], resources=world.resources, instance=world.instance).success
        yield world


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, mlflow_template_db: Path) -> Iterator[World]:
    """Champion v1 trained for EPOCHS, evaluated and promoted through the real assets and the gate."""
    with _installation(tmp_path_factory.mktemp("trained"), mlflow_template_db) as world:
        config = SUPPORT.keys.run_config(raw_examples={"source": "files"}, lora_adapter={"epochs": EPOCHS})
        assert dg.materialize([SUPPORT.raw_examples, *RETRAIN], resources=world.resources, instance=world.instance,
                              run_config=config).success
        assert world.registry().alias_version("champion") == "1"
        yield world


def _tickets(generated: int, seed: int) -> pd.DataFrame:
    """Generated support tickets of LABELS only."""
    frame = generate_corpus(generated, seed=seed)
    return frame[frame["label"].isin(LABELS)].reset_index(drop=True)


def _versions(registry: ModelRegistry) -> set[str]:
    return {str(mv.version) for mv in registry.client.search_model_versions(f"name='{registry.model_name}'")}


def _capture(settings: Settings, frame: pd.DataFrame) -> list[str]:
    """Captured traffic (one batch file) whose ids annotators label; feedback joins only id and text."""
    records = [TrafficRecord(uuid.uuid4().hex, datetime.now(UTC), text, label, 0.9, settings.registered_model_name,
                             "1", 5.0, [0.0] * 32)
               for text, label in zip(frame["text"], frame["label"], strict=True)]
    writer = TrafficWriter(settings.production_dir, max_rows=len(records) + 1)
    writer.append(records)
    writer.close()
    return [r.id for r in records]


def _wait_for(what: str, condition: Callable[[], object], timeout: float, alive: subprocess.Popen | None = None,
              every: float = 0.25) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"process ended (rc {alive.returncode}) before {what}")
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Class names and messages of the failed step's error chain."""
    error = result.get_step_failure_events()[0].step_failure_data.error
    parts = []
    while error is not None:
        parts.append(f"{error.cls_name}: {error.message}")
        error = error.cause
    return "\n".join(parts)


# ------------------------------------------------------------------ 6. sabotaged challenger

FLIPPED, POISON = "shipping", "billing"


def test_poisoned_feedback_challenger_is_refused_with_reasons(trained: World) -> None:
    """Annotator feedback relabels every shipping ticket as billing; the retrained challenger is refused."""
    registry = trained.registry()
    champion_before = registry.alias_version("champion")
    traffic = _tickets(800, seed=31)
    ids = _capture(trained.settings, traffic)
    poisoned = traffic["label"].where(traffic["label"] != FLIPPED, POISON)
    trained.settings.feedback_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": ids, "label": poisoned}).to_csv(trained.settings.feedback_dir / "poisoned.csv", index=False)

    result = dg.materialize(RETRAIN, resources=trained.resources, instance=trained.instance, raise_on_error=False,
                            run_config=SUPPORT.keys.run_config(lora_adapter={"mode": "incremental", "epochs": EPOCHS}),
                            tags={DagsterTag.DRIFT_SEVERITY: "moderate"})  # as a run for moderate drift is tagged

    assert not result.success
    assert not result.asset_materializations_for_node(_node("champion"))
    gate = trained.record("evaluation")
    challenger = gate["challenger_version"]
    params = registry.get_run(registry.version_info(challenger)["run_id"]).data.params
    assert params["drift_severity"] == "moderate" and params["replay_share_moderate"] == "0.05"
    assert int(params["new_rows"]) + int(params["replay_rows"]) == int(params["train_rows"])
    curated = pd.read_parquet(trained.settings.curated_dir / f"{params['data_content_hash']}.parquet")
    assert 0 < int(params["validation_rows"]) < (curated["split"] == "validation").sum()  # its new + replayed rows
    (adapter,) = result.asset_materializations_for_node(_node("lora_adapter"))  # what the operator sees
    assert adapter.metadata["drift_severity"].value == "moderate"
    assert adapter.metadata["replay_rows"].value == int(params["replay_rows"])
    assert challenger != champion_before and gate["passed"] is False
    assert registry.alias_version("champion") == champion_before
    assert registry.alias_version("challenger") == challenger
    failed = {check["name"]: check["detail"] for check in gate["checks"] if not check["passed"]}
    print(f"poisoned challenger v{challenger} refused: {failed}")
    assert "class_f1_drop" in failed and failed["class_f1_drop"].split(": ")[1].startswith(FLIPPED), failed
    assert any(FLIPPED in reason for reason in gate["reasons"])
    (evaluation_check,) = result.get_asset_check_evaluations()[-1:]
    assert evaluation_check.check_name == "promotion_gate" and not evaluation_check.passed
    # the refused version rebuilds from what its run recorded: the new + replayed training and validation rows
    rebuilt = reproduce(registry, challenger, trained.settings.curated_dir, trained.settings.resolved_base_model_path)
    assert rebuilt.matches, rebuilt.markdown()


# ------------------------------------------------------------------ 2. crash mid-training

KILLED_TRAINING = """
import sys
from pathlib import Path

import dagster as dg

from modelops.defs.customisation import customisation_defs
from modelops.defs.resources import resources_from_settings
from modelops.settings import Settings

home, data, policy = map(Path, sys.argv[1:4])
settings = Settings(home=home, data_dir=data, training_config=policy)
with dg.instance_for_test() as instance:
    dg.materialize([customisation_defs(settings.customisation).lora_adapter],
                   resources=resources_from_settings(settings), instance=instance)
"""


def _first_step_logged(registry: ModelRegistry, since_ms: int) -> str | None:
    """The id of a training run started after `since_ms` that has logged a training step, else None."""
    runs = registry.client.search_runs([registry.experiment_id], f"attributes.status = 'RUNNING' and "
                                       f"attributes.start_time > {since_ms}")
    return next((r.info.run_id for r in runs if registry.client.get_metric_history(r.info.run_id, "train_loss")), None)


def test_training_killed_mid_run_is_finalised_and_the_next_run_succeeds(installation: World, tmp_path: Path) -> None:
    registry = installation.registry()
    aliases_before = {alias: registry.alias_version(alias) for alias in ("champion", "challenger")}
    versions_before = _versions(registry)
    policy = yaml.safe_load((PACKAGE_CONFIG_DIR / "training.yaml").read_text())
    policy.update(epochs=100, evaluations_per_epoch=8)  # a long run that logs a step metric every ~2 steps
    (tmp_path / "training.yaml").write_text(yaml.safe_dump(policy))
    started_ms = int(time.time() * 1000)
    with (tmp_path / "training.log").open("w") as log:
        child = subprocess.Popen([sys.executable, "-c", KILLED_TRAINING, str(installation.settings.home),
                                  str(installation.settings.data_dir), str(tmp_path / "training.yaml")],
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            run_id = _wait_for("a logged training step", lambda: _first_step_logged(registry, started_ms), 300,
                               alive=child)
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL

    killed = registry.client.get_run(str(run_id))
    assert killed.info.status == "RUNNING"  # the process died mid-step: nothing ended its run
    assert {alias: registry.alias_version(alias) for alias in aliases_before} == aliases_before
    assert _versions(registry) == versions_before  # no version, let alone a half-written one
    assert not (installation.settings.adapters_dir / str(run_id) / "modelops.json").exists()
    inputs = installation.settings.state / "training" / str(run_id)
    assert (inputs / "train.parquet").is_file()  # the killed run's inputs are still on disk ...
    partial = installation.settings.adapters_dir / f"{run_id}.partial"
    partial.mkdir(parents=True)  # ... and so would be its half-saved adapter, had the kill come while saving
    (partial / "adapter_model.safetensors").write_bytes(b"half")

    result = dg.materialize([SUPPORT.lora_adapter], resources=installation.resources, instance=installation.instance,
                            run_config=SUPPORT.keys.run_config(lora_adapter={"max_steps": 2}))

    assert result.success
    killed = registry.client.get_run(str(run_id))
    assert killed.info.status == "KILLED"
    assert f":{child.pid} ended without finishing" in killed.data.tags[MlflowTag.END_REASON]
    assert not inputs.exists() and not partial.exists()  # the next training run removed both
    version = str(result.asset_materializations_for_node(_node("lora_adapter"))[0].metadata["model_version"].value)
    assert _versions(registry) == versions_before | {version}
    assert registry.alias_version("challenger") == version
    assert registry.alias_version("champion") == aliases_before["champion"]


def test_an_interrupted_adapter_save_is_never_registered(installation: World, untrained_adapter_dir: Path,
                                                         tmp_path: Path) -> None:
    registry = installation.registry()
    versions_before = _versions(registry)
    no_manifest = shutil.copytree(untrained_adapter_dir, tmp_path / "no-manifest")
    (no_manifest / "modelops.json").unlink()
    truncated = shutil.copytree(untrained_adapter_dir, tmp_path / "truncated")
    (truncated / "modelops.json").write_text((untrained_adapter_dir / "modelops.json").read_text()[:40])
    for folder, problem in ((no_manifest, "missing ['modelops.json']"), (truncated, "unreadable modelops.json")):
        with pytest.raises(RegistryError, match="incomplete") as caught, registry.run("interrupted", {}) as run_id:
            registry.register_adapter(run_id, folder, {})
        assert problem in str(caught.value)
        assert registry.client.get_run(run_id).info.status == "FAILED"
    assert _versions(registry) == versions_before


# ------------------------------------------------------------------ 3. MLflow store down, read-only, unopenable


def test_tracking_server_down_fails_training_and_evaluation_fast_with_a_clear_message(installation: World) -> None:
    registry = installation.registry()
    champion_before = registry.alias_version("champion")
    evaluation_before = installation.record("evaluation")
    down = MlflowRegistry(tracking_uri=f"http://127.0.0.1:{free_port()}",
                          model_name=installation.settings.registered_model_name)
    for asset in (SUPPORT.lora_adapter, SUPPORT.evaluation):
        started = time.monotonic()
        result = dg.materialize([asset], resources=override(installation.resources, "mlflow", SUPPORT.keys.name, down),
                                instance=installation.instance, raise_on_error=False,
                                run_config=SUPPORT.keys.run_config(lora_adapter={"max_steps": 1})
                                if asset is SUPPORT.lora_adapter else None)
        seconds = time.monotonic() - started
        failure = _failure_text(result)
        print(f"{asset.key.to_user_string()} with the tracking server down failed in {seconds:.1f}s:\n{failure}")
        assert not result.success
        assert "RegistryUnavailableError" in failure and "Gave up after 3 retries" in failure
        assert "MODELOPS_MLFLOW_TRACKING_URI" in failure
        assert seconds < 60  # MLflow's own defaults: 7 retries, about 4 minutes
    assert installation.record("evaluation") == evaluation_before  # no gate decision without knowing the champion
    assert registry.alias_version("champion") == champion_before


def test_read_only_store_moves_no_alias(installation: World, untrained_adapter_dir: Path) -> None:
    registry = installation.registry()
    with registry.run("candidate", {}) as run_id:
        candidate = registry.register_adapter(run_id, untrained_adapter_dir, {})
    champion_before = registry.alias_version("champion")
    history_before = registry.promotion_history()
    evaluation_before = installation.record("evaluation")
    lake = installation.resources["lakes"].of(SUPPORT.keys.name)
    lake.write_record("evaluation", {**evaluation_before, "challenger_version": candidate, "passed": True})
    read_only = MlflowRegistry(model_name=installation.settings.registered_model_name,
                               tracking_uri=f"sqlite:///file:{installation.settings.home / 'mlflow.db'}?mode=ro&uri=true")
    try:
        result = dg.materialize([SUPPORT.champion], instance=installation.instance, raise_on_error=False,
                                resources=override(installation.resources, "mlflow", SUPPORT.keys.name, read_only))
    finally:
        lake.write_record("evaluation", evaluation_before)
    failure = _failure_text(result)
    print(f"champion on a read-only store:\n{failure}")
    assert not result.success
    assert f"could not promote version {candidate} to champion" in failure and "readonly database" in failure
    assert registry.alias_version("champion") == champion_before
    assert registry.promotion_history() == history_before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux) for an unopenable database path")
def test_unopenable_sqlite_store_fails_in_seconds() -> None:
    registry = ModelRegistry("sqlite:////proc/modelops-mlflow.db", "support-router")
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match="Cannot open the MLflow store sqlite:////proc/"):
        registry.alias_version("champion")
    assert time.monotonic() - started < 5  # MLflow alone retries for about 100 s


# ------------------------------------------------------------------ 4./5. sensor daemon restarts, drift storm

LOCATION = """
from pathlib import Path

from modelops.definitions import build_definitions
from modelops.settings import Settings

defs = build_definitions(Settings(home=Path({home!r}), data_dir=Path({data!r})))
"""
DAEMON_CHILD = """
import sys
from pathlib import Path

from modelops_tests.reliability.test_loop_faults import sensor_daemon_iteration

sensor_daemon_iteration(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
"""
REPO_ROOT = Path(__file__).resolve().parents[2]


def sensor_daemon_iteration(dagster_home: Path, location: Path, now: float, crash_at: str | None = None) -> None:
    """One iteration of Dagster's own sensor daemon on the persistent instance in `dagster_home`, at time `now`.

    With `crash_at` (a crash point of Dagster's sensor daemon, e.g. RUN_CREATED) the process SIGKILLs itself there,
    as a daemon killed mid-tick would die.
    """
    import logging

    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import (
        InProcessTestWorkspaceLoadTarget,
        create_test_daemon_workspace_context,
        freeze_time,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.sensor import execute_sensor_iteration

    origin = InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=str(location), attribute="defs"),
                                         location_name="modelops")
    flags = {SUPPORT.drift_sensor.name: {crash_at: signal.SIGKILL}} if crash_at else None
    with (dg.DagsterInstance.from_config(str(dagster_home)) as instance,
          create_test_daemon_workspace_context(InProcessTestWorkspaceLoadTarget(origin), instance) as workspace,
          freeze_time(now)):
        list(execute_sensor_iteration(workspace, logging.getLogger("sensor-daemon"), None, None,
                                      debug_crash_flags=flags))


@dataclass(frozen=True)
class Daemon:
    """A persistent Dagster instance (the repository's dagster.yaml) and a code location for one installation."""

    home: Path
    location: Path
    settings: Settings

    def tick(self, now: float) -> None:
        """A daemon started afresh (new instance and workspace objects from storage) evaluates one tick."""
        sensor_daemon_iteration(self.home, self.location, now)

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.settings.tracking_uri, self.settings.registered_model_name)

    def cursor(self) -> dict:
        from dagster._core.scheduler.instigation import InstigatorType

        with self.instance() as instance:
            (state,) = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
            return json.loads(state.instigator_data.cursor or "{}")

    def runs(self) -> list[dg.DagsterRun]:
        with self.instance() as instance:
            return list(instance.get_runs())

    def observations(self) -> list[dict]:
        """Metadata of every drift observation the daemon recorded, oldest first."""
        with self.instance() as instance:
            records = instance.fetch_observations(SUPPORT.production_traffic.key, limit=1000, ascending=True).records
        return [{k: v.value for k, v in r.asset_observation.metadata.items()} for r in records]


@pytest.fixture(scope="module")
def classifier(base_info, untrained_adapter_dir: Path):
    from modelops.core.serving.predictor import AdapterClassifier

    return AdapterClassifier(base_info, untrained_adapter_dir)


@pytest.fixture(scope="module")
def drift_reference(classifier):
    """The champion's predictions on held-out data and its training vocabulary."""
    from modelops.core.monitoring.reference import build_reference

    return build_reference(classifier, generate_corpus(600, seed=11)["text"].tolist(),
                           generate_corpus(1500, seed=12)["text"].tolist())


@pytest.fixture()
def daemon(tmp_path: Path, fresh_mlflow_db, untrained_adapter_dir: Path, drift_reference) -> Daemon:
    """Champion v1 with its drift reference, an empty traffic folder and the embedded instance profile."""
    from modelops.app.instance import EMBEDDED_PROFILE
    from modelops.core.monitoring.reference import save_reference

    settings = Settings(home=tmp_path / "home", data_dir=tmp_path / "data")
    fresh_mlflow_db(settings.home / "mlflow.db")
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name, settings.mlflow_artifact_root)
    with registry.run("train", {}) as run_id:
        registry.promote(registry.register_adapter(run_id, untrained_adapter_dir, {}), "first champion")
    save_reference(settings.state / "reference", "1", *drift_reference)
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(EMBEDDED_PROFILE, home / "dagster.yaml")
    location = tmp_path / "location.py"
    location.write_text(LOCATION.format(home=str(settings.home), data=str(settings.data_dir)))
    return Daemon(home, location, settings)


def _serve(settings: Settings, classifier, texts: list[str]) -> list[str]:
    """Predictions captured as the server captures them (one batch file); returns their ids."""
    return write_captured_batch(settings.production_dir, classifier, texts, settings.registered_model_name)


def _batches(settings: Settings) -> list[str]:
    from modelops.core.monitoring.traffic import list_batches

    return list_batches(settings.production_dir)


def _drift_checks(daemon: Daemon, key: str | None = None) -> list:
    registry = daemon.registry()
    query = f"tags.`modelops.drift_event` = '{key}'" if key else "tags.`modelops.drift_event` LIKE 'drift-%'"
    return registry.client.search_runs([registry.experiment_id], query)


def _assert_checked_once(daemon: Daemon) -> None:
    """Every batch of the traffic folder is in exactly one drift check recorded in MLflow."""
    batches = _batches(daemon.settings)
    checked = [b for run in _drift_checks(daemon) for b in run.data.tags["modelops.batches"].split(",")]
    assert sorted(checked) == batches, "a batch was checked twice, or never"


@pytest.mark.parametrize("crash_at", [
    "RUN_CREATED",  # after the run row is created, before it is submitted and before the cursor is stored
    pytest.param("TICK_HELD", marks=pytest.mark.slow),  # the tick is open, the sensor not evaluated yet
    pytest.param("RUN_LAUNCHED", marks=pytest.mark.slow),  # the run is queued, the tick not closed
])
def test_daemon_killed_mid_tick_and_restarted_checks_every_batch_once_and_requests_one_run(
        daemon: Daemon, classifier, crash_at: str) -> None:
    from modelops.core.monitoring.drift_decision import window_key

    ids = write_drifted_batch(daemon.settings, classifier, seed=3, rows=150)
    ids += write_drifted_batch(daemon.settings, classifier, seed=4, rows=150)
    label_feedback(daemon.settings, ids[:150], "round1")
    key = window_key(_batches(daemon.settings))
    now = time.time()

    child = subprocess.run([sys.executable, "-c", DAEMON_CHILD, str(daemon.home), str(daemon.location), str(now),
                            crash_at], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    created = daemon.runs()
    assert len(created) == (0 if crash_at == "TICK_HELD" else 1)
    assert all(run.tags["dagster/run_key"] == key for run in created)
    if crash_at == "RUN_CREATED":
        assert created[0].status == dg.DagsterRunStatus.NOT_STARTED
        assert daemon.cursor().get("last_batch", "") == ""  # the killed tick never stored its cursor

    daemon.tick(now + 30)  # restarted: resumes the interrupted tick, or evaluates afresh when nothing was reserved
    (run,) = daemon.runs()
    assert run.status == dg.DagsterRunStatus.QUEUED and run.tags["dagster/run_key"] == key
    assert all(run.run_id == earlier.run_id for earlier in created)
    assert run.tags["modelops/training"] == "true"  # counted by the one-training-at-a-time queue limit
    assert daemon.cursor()["last_batch"] == _batches(daemon.settings)[-1]
    assert len(_drift_checks(daemon, key)) == 1

    # Restart between ticks: a new batch is checked alone; then nothing is left to check.
    _serve(daemon.settings, classifier, generate_corpus(250, seed=5)["text"].tolist())
    daemon.tick(now + 60)
    daemon.tick(now + 90)
    assert len(daemon.runs()) == 1
    assert [o["batches"] for o in daemon.observations()] == [2, 1]
    _assert_checked_once(daemon)
    assert daemon.cursor()["last_batch"] == _batches(daemon.settings)[-1]


def _skip_reasons(daemon: Daemon) -> list[str]:
    """Skip reasons of the sensor's ticks, oldest first."""
    from dagster._core.scheduler.instigation import InstigatorType

    with daemon.instance() as instance:
        (state,) = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    return [tick.skip_reason or "" for tick in reversed(ticks)]


def test_drift_storm_requests_one_training_run_and_respects_the_cooldown(daemon: Daemon, classifier) -> None:
    from modelops.core.monitoring.drift_decision import window_key

    now = time.time()
    for burst in range(2):  # two bursts of four drifted batches, each with fresh labels, 30 s apart
        ids = [i for n in range(4) for i in write_drifted_batch(daemon.settings, classifier, 100 + 10 * burst + n, 60)]
        label_feedback(daemon.settings, ids, f"burst{burst}")
        daemon.tick(now + 30 * burst)

    batches = _batches(daemon.settings)
    (run,) = daemon.runs()
    assert run.tags["dagster/run_key"] == window_key(batches[:4])
    assert run.tags["modelops/batches"] == ",".join(batches[:4]) and run.tags["modelops/training"] == "true"
    reasons = _skip_reasons(daemon)
    print(f"storm ticks: {reasons}")
    assert reasons[0] == "" and all("cooldown" in reason for reason in reasons[1:]), reasons
    assert [o["batches"] for o in daemon.observations()] == [4, 4]
    _assert_checked_once(daemon)
    cursor = daemon.cursor()
    assert len(cursor["retrains"]) == 1
    assert cursor["pending_drift"]["batches"] == batches[4:]  # later drift waits for the cooldown, not lost


def _queued_run(instance: dg.DagsterInstance, job, trigger: str) -> dg.DagsterRun:
    """A run of `job` waiting in the run queue, as the sensor, the schedule or the UI submit it."""
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.test_utils import create_run_for_test
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="modelops.definitions", attribute="defs"),
                                           location_name="modelops")
    return create_run_for_test(instance, job.name, status=dg.DagsterRunStatus.QUEUED,
                               tags={**(job.tags or {}), "modelops/trigger": trigger},
                               remote_job_origin=RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"),
                                                                 job.name))


def test_training_runs_start_one_at_a_time_and_a_killed_one_is_failed_by_run_monitoring(tmp_path: Path) -> None:
    """The embedded profile's run queue starts one training run at a time and holds back no other run; a training run
    whose worker was killed (STARTED forever) is failed by run monitoring, which frees its queue and pool slots."""
    import logging

    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.test_utils import (
        create_test_daemon_workspace_context,
        freeze_time,
    )
    from dagster._core.workspace.load_target import EmptyWorkspaceTarget
    from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
    from dagster._daemon.monitoring.run_monitoring import (
        execute_run_monitoring_iteration,
    )
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
        QueuedRunCoordinatorDaemon,
    )

    from modelops.app.instance import EMBEDDED_PROFILE
    from modelops.defs.assets.training import TRAINING_POOL

    bootstrap_job, data_job, retrain_job = SUPPORT.bootstrap_job, SUPPORT.data_job, SUPPORT.retrain_job
    profile = yaml.safe_load(EMBEDDED_PROFILE.read_text())
    profile["run_launcher"] = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}  # launch nothing
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(profile))
    with (dg.DagsterInstance.from_config(str(tmp_path)) as instance,
          create_test_daemon_workspace_context(EmptyWorkspaceTarget(), instance) as workspace):
        assert instance.run_monitoring_enabled
        training = [_queued_run(instance, job, trigger)
                    for job, trigger in ((retrain_job, "drift"), (retrain_job, "schedule"), (bootstrap_job, "cli"))]
        data = _queued_run(instance, data_job, "manual")
        queue = QueuedRunCoordinatorDaemon(interval_seconds=1)

        def dequeue() -> list[str]:
            """Two passes of the run queue; the training runs that are out of the queue."""
            for _ in range(2):
                list(queue.run_iteration(workspace))
            return [run.run_id for run in training
                    if instance.get_run_by_id(run.run_id).status != dg.DagsterRunStatus.QUEUED]

        (first,) = dequeue()
        assert instance.get_run_by_id(data.run_id).status == dg.DagsterRunStatus.STARTING  # not held back
        instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_START.value, job_name=retrain_job.name),
                                      run_id=first)  # the run worker starts training ...
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(TRAINING_POOL)
        assert storage.claim_concurrency_slot(TRAINING_POOL, first, "lora_adapter").is_claimed  # ... is SIGKILLed
        assert dequeue() == [first]  # the dead run still holds the single training slot
        later = time.time() + instance.run_monitoring_max_runtime_seconds + 60
        with freeze_time(later):
            list(execute_run_monitoring_iteration(workspace, logging.getLogger("run-monitoring")))
        assert instance.get_run_by_id(first).status == dg.DagsterRunStatus.FAILURE
        assert storage.get_concurrency_info(TRAINING_POOL).active_run_ids == {first}
        with freeze_time(later + instance.run_monitoring_settings["free_slots_after_run_end_seconds"] + 60):
            list(execute_concurrency_slots_iteration(workspace, logging.getLogger("run-monitoring")))
        assert storage.get_concurrency_info(TRAINING_POOL).active_run_ids == set()  # the pool slot is free again
        (second,) = set(dequeue()) - {first}
        instance.report_run_failed(instance.get_run_by_id(second))  # ends (here: failed) normally
        (third,) = set(dequeue()) - {first, second}
        assert {first, second, third} == {run.run_id for run in training}


def test_an_ad_hoc_training_run_waits_for_the_training_pool_held_by_another_run(installation: World,
                                                                                tmp_path: Path) -> None:
    """A lora_adapter materialisation without the training job tag (the UI, `dagster asset materialize`) is not held
    by the run queue's tag limit, but its step waits for the modelops_training pool's one slot of the embedded
    profile while another run holds it, and trains once that run frees it."""
    from modelops.app.instance import EMBEDDED_PROFILE
    from modelops.defs.assets.training import TRAINING_POOL

    (tmp_path / "dagster.yaml").write_text(EMBEDDED_PROFILE.read_text())
    registry = installation.registry()
    versions_before = _versions(registry)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(TRAINING_POOL)
        assert storage.claim_concurrency_slot(TRAINING_POOL, "another-training-run", "lora_adapter").is_claimed
        outcome: dict = {}
        ad_hoc = threading.Thread(target=lambda: outcome.update(result=dg.materialize(
            [SUPPORT.lora_adapter], resources=installation.resources, instance=instance,
            run_config=SUPPORT.keys.run_config(lora_adapter={"max_steps": 2}))))
        ad_hoc.start()
        waiting = _wait_for("the ad-hoc run waiting for the pool",
                            lambda: storage.get_concurrency_info(TRAINING_POOL).pending_run_ids or None, 120)
        (run_id,) = waiting
        assert "modelops/training" not in instance.get_run_by_id(run_id).tags  # the queue's tag limit misses it
        for _ in range(20):  # bounded polling: the run stays parked on the pool and nothing trains meanwhile
            assert run_id in storage.get_concurrency_info(TRAINING_POOL).pending_run_ids
            assert ad_hoc.is_alive() and _versions(registry) == versions_before
            time.sleep(0.25)
        storage.free_concurrency_slots_for_run("another-training-run")
        ad_hoc.join(timeout=600)
    assert outcome["result"].success
    assert len(_versions(registry) - versions_before) == 1


def test_sensor_tick_with_the_registry_down_fails_and_the_next_tick_checks_the_batch(daemon: Daemon,
                                                                                      classifier) -> None:
    drift_sensor = SUPPORT.drift_sensor
    _serve(daemon.settings, classifier, generate_corpus(250, seed=6)["text"].tolist())
    working = resources_from_settings(daemon.settings)
    down = override(working, "mlflow", SUPPORT.keys.name, MlflowRegistry(
        tracking_uri=f"http://127.0.0.1:{free_port()}", model_name=daemon.settings.registered_model_name))
    with dg.instance_for_test() as instance:
        with pytest.raises(RegistryUnavailableError, match="could not read the 'champion' alias"):
            drift_sensor(dg.build_sensor_context(instance=instance, cursor=None, resources=down))
        # The failed tick stored no cursor: the next tick starts from the same (empty) one and checks the batch.
        result = drift_sensor(dg.build_sensor_context(instance=instance, cursor=None, resources=working))
    assert json.loads(result.cursor)["last_batch"] == _batches(daemon.settings)[-1]
    _assert_checked_once(daemon)
