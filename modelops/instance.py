"""Which Dagster instance profile modelops runs on: embedded SQLite (default) or PostgreSQL (scale-out)."""

from __future__ import annotations

import os
from pathlib import Path

from modelops.settings import DAGSTER_DATABASE, MLFLOW_DATABASE, Settings, SettingsError, postgres_database_url

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_PROFILE = REPO_ROOT / "dagster.yaml"
POSTGRES_PROFILE = REPO_ROOT / "deploy" / "postgres" / "dagster.yaml"


def instance_profile(settings: Settings) -> Path:
    """The dagster.yaml to install in DAGSTER_HOME; with a Postgres server, also create its databases."""
    if not settings.postgres_url:
        return EMBEDDED_PROFILE
    ensure_postgres_databases(settings.postgres_url, [DAGSTER_DATABASE, MLFLOW_DATABASE])
    os.environ.setdefault("MODELOPS_DAGSTER_POSTGRES_URL", postgres_database_url(settings.postgres_url, DAGSTER_DATABASE))
    return POSTGRES_PROFILE


def ensure_postgres_databases(server_url: str, names: list[str]) -> None:
    """CREATE DATABASE for each missing name (idempotent); a clear error when the server cannot be reached."""
    import psycopg2
    from psycopg2 import sql

    try:
        connection = psycopg2.connect(postgres_database_url(server_url, "postgres", driver=""), connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise SettingsError(f"Cannot connect to the PostgreSQL server at postgres_url ({exc}). Check that it runs "
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
