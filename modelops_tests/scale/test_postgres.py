"""Scale-out profile on a real PostgreSQL server: training -> evaluation -> promotion, then one drift-sensor tick.

scripts/postgres.sh installs the Debian package if needed and starts a throwaway server on 127.0.0.1 with a temporary
data directory; the test skips (saying why) only where PostgreSQL cannot be installed or started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from modelops.settings import (
    DAGSTER_DATABASE,
    MLFLOW_DATABASE,
    PACKAGE_CONFIG_DIR,
    Settings,
    default_base_model_path,
    postgres_database_url,
)
from modelops_tests.helpers import write_captured_batch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def postgres_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = subprocess.run([str(REPO / "scripts" / "postgres.sh"), "start", str(port)], capture_output=True,
                             text=True, timeout=900)
    if started.returncode != 0:
        pytest.skip(f"PostgreSQL could not be installed or started here: {started.stderr.strip()[-400:]}")
    data_dir, url = started.stdout.split()
    yield url
    subprocess.run([str(REPO / "scripts" / "postgres.sh"), "stop", data_dir], timeout=120, check=False)


def _query(url: str, database: str, statement: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(postgres_database_url(url, database, driver="")) as connection, connection.cursor() as cursor:
        cursor.execute(statement)
        return cursor.fetchall()


def test_data_assets_registry_and_sensor_run_on_postgres(tmp_path: Path, postgres_url: str, untrained_adapter_dir,
                                                        monkeypatch):
    """Fast default: Dagster storage and the MLflow registry on the server, through modelops's own code paths."""
    from modelops.app.instance import prepare_environment
    from modelops.core.registry.registry import ModelRegistry
    from modelops.defs.customisation import customisation_defs
    from modelops.defs.resources import resources_from_settings

    settings = Settings(home=tmp_path / "home", data_dir=tmp_path / "data", postgres_url=postgres_url)
    c = customisation_defs(settings.customisation)
    # prepare_environment sets these process-wide; monkeypatch restores them after the test.
    for name, value in (("DAGSTER_HOME", tmp_path / "dagster"), ("MODELOPS_HOME", settings.home),
                        ("MODELOPS_DATA_DIR", settings.data_dir)):
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("MODELOPS_DAGSTER_POSTGRES_URL", raising=False)
    prepare_environment(settings)  # creates the databases and installs the Postgres profile
    resources = resources_from_settings(settings)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize([c.raw_examples, c.curated_training_set, *c.data_checks], resources=resources,
                                instance=instance, run_config=c.keys.run_config(raw_examples={"generator_rows": 1000}))
        assert result.success
        tick = c.drift_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert "no new traffic" in tick.skip_message
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name, settings.mlflow_artifact_root)
    with registry.run("train", {}) as run_id:
        version = registry.register_adapter(run_id, untrained_adapter_dir, {})
    registry.promote(version, "postgres test")
    runs = _query(postgres_url, DAGSTER_DATABASE, "SELECT status FROM runs")
    assert ("SUCCESS",) in runs
    assert ("support-router", "champion", int(version)) in _query(
        postgres_url, MLFLOW_DATABASE, "SELECT name, alias, version FROM registered_model_aliases")


@pytest.mark.slow
def test_bootstrap_and_a_sensor_tick_run_on_postgres(tmp_path: Path, postgres_url: str, monkeypatch):
    """The whole training -> evaluation -> promotion job, then a real drift tick (about 3 minutes on 2 cores)."""
    training = yaml.safe_load((PACKAGE_CONFIG_DIR / "training.yaml").read_text()) | {"epochs": 2}  # gate-worthy
    (tmp_path / "training.yaml").write_text(yaml.safe_dump(training))
    env = {**os.environ, "MODELOPS_HOME": str(tmp_path / "home"), "MODELOPS_DATA_DIR": str(tmp_path / "data"),
           "MODELOPS_TRAINING_CONFIG": str(tmp_path / "training.yaml"), "DAGSTER_HOME": str(tmp_path / "dagster"),
           "MODELOPS_POSTGRES_URL": postgres_url}
    for command in (["generate", "--rows", "1200"], ["materialize", "bootstrap_job"]):
        out = subprocess.run([sys.executable, "-m", "modelops.app.cli", *command], env=env, capture_output=True,
                             text=True, timeout=900, cwd=tmp_path)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    # Nothing went to the embedded stores: Dagster's runs and MLflow's registry live in the server's databases.
    assert not (tmp_path / "dagster" / "history").exists() and not (tmp_path / "home" / "mlflow.db").exists()
    assert ("support_router_bootstrap_job", "SUCCESS") in _query(postgres_url, DAGSTER_DATABASE,
                                                                 "SELECT pipeline_name, status FROM runs")
    aliases = _query(postgres_url, MLFLOW_DATABASE, "SELECT name, alias, version FROM registered_model_aliases")
    assert ("support-router", "champion", 1) in aliases

    # One tick of the real drift sensor against the Postgres-backed instance and registry.
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.data.datagen import generate_scenario
    from modelops.core.serving.served_model import load_champion
    from modelops.core.registry.registry import ModelRegistry
    from modelops.defs.customisation import customisation_defs
    from modelops.defs.resources import resources_from_settings

    monkeypatch.setenv("MODELOPS_DAGSTER_POSTGRES_URL", postgres_database_url(postgres_url, DAGSTER_DATABASE))
    settings = Settings(home=tmp_path / "home", data_dir=tmp_path / "data", postgres_url=postgres_url,
                        training_config=tmp_path / "training.yaml")
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name, settings.mlflow_artifact_root)
    classifier = load_champion(registry, describe_base_model(default_base_model_path()), tmp_path / "champion").classifier
    texts = generate_scenario("language_shift", 300, seed=3, severity=1.0)["text"].tolist()
    write_captured_batch(settings.production_dir, classifier, texts)
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        context = dg.build_sensor_context(instance=instance, resources=resources_from_settings(settings))
        result = customisation_defs(settings.customisation).drift_sensor(context)
    assert result.asset_events[0].metadata["severity"].value in ("moderate", "severe")
    assert "awaits labels" in result.skip_reason.skip_message
