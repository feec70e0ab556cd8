"""The Dagster instance modelops runs on: its profile (embedded SQLite by default, PostgreSQL to scale out), the
environment every command prepares, and jobs executed in this process on it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from modelops.core.config_files import ConfigError
from modelops.settings import DAGSTER_DATABASE, MLFLOW_DATABASE, Settings, postgres_database_url

REPO_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_PROFILE = REPO_ROOT / "dagster.yaml"
POSTGRES_PROFILE = REPO_ROOT / "deploy" / "postgres" / "dagster.yaml"


def instance_profile(settings: Settings) -> Path:
    """The dagster.yaml to install in DAGSTER_HOME; with a Postgres server, also create its databases."""
    if not settings.postgres_url:
        return EMBEDDED_PROFILE
    ensure_postgres_databases(settings.postgres_url, [DAGSTER_DATABASE, MLFLOW_DATABASE])
    os.environ.setdefault("MODELOPS_DAGSTER_POSTGRES_URL",
                          postgres_database_url(settings.postgres_url, DAGSTER_DATABASE))
    return POSTGRES_PROFILE


def ensure_postgres_databases(server_url: str, names: list[str]) -> None:
    """CREATE DATABASE for each missing name (idempotent); a clear error when the server cannot be reached."""
    import psycopg2
    from psycopg2 import sql

    try:
        connection = psycopg2.connect(postgres_database_url(server_url, "postgres", driver=""), connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise ConfigError(f"Cannot connect to the PostgreSQL server at postgres_url ({exc}). Check that it runs "
                            "and that the user may create databases, or create them: "
                            f"{', '.join(names)}.") from exc
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for name in names:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()


def prepare_environment(settings: Settings) -> Path:
    """Offline mode for Hugging Face, and DAGSTER_HOME under the state directory with the instance profile's
    dagster.yaml."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    profile = instance_profile(settings)
    if profile.is_file():  # keep the instance config in step with the repository
        shutil.copyfile(profile, target)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    for key, value in (("MODELOPS_HOME", settings.home), ("MODELOPS_DATA_DIR", settings.data_dir)):
        os.environ.setdefault(key, str(value))
    return dagster_home


def execute_job(job_name: str, run_config: dict | None = None, tags: dict[str, str] | None = None):
    """Execute a job of the code location in this process on the persistent instance (visible in the UI)."""
    import dagster as dg

    from modelops.definitions import defs

    with dg.DagsterInstance.get() as instance:
        config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
        return defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, run_config=config, tags=tags or {}, raise_on_error=False)


def run_job(job_name: str, run_config: dict | None = None, tags: dict[str, str] | None = None) -> bool:
    """Execute a job (see execute_job); True when it succeeded."""
    return execute_job(job_name, run_config, tags).success
