"""Reaching the MLflow store and what may enter it: the registry's errors, a fast probe of database-backed stores,
and the completeness check of an adapter folder before it becomes a model version."""

from __future__ import annotations

import json
from pathlib import Path

DATABASE_DIALECTS = ("sqlite", "postgresql", "mysql", "mssql")
DATABASE_CONNECT_TIMEOUT_SECONDS = 10
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class RegistryError(RuntimeError):
    """The registry cannot do what was asked; the message says what is missing."""


class RegistryUnavailableError(RegistryError):
    """The MLflow store cannot be reached, opened or written."""


def database_dialect(uri: str) -> str | None:
    dialect = uri.split(":", 1)[0].split("+", 1)[0]
    return dialect if dialect in DATABASE_DIALECTS else None


def shown_uri(uri: str) -> str:
    """The store URI for messages, without a database server's password."""
    if database_dialect(uri) in (None, "sqlite"):
        return uri
    import sqlalchemy

    return sqlalchemy.make_url(uri).render_as_string(hide_password=True)


def probe_database_store(uri: str) -> None:
    """Open one connection to a database-backed store (SQLite file, PostgreSQL, MySQL, SQL Server).

    MLflow retries opening its database for about 100 s (mlflow.store.db.utils: 10 attempts, not configurable) and
    then raises a bare SQLAlchemy error; this probe fails in milliseconds with a message that says what to fix.
    """
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    dialect = database_dialect(uri)
    connect_args = {"connect_timeout": DATABASE_CONNECT_TIMEOUT_SECONDS} if dialect in ("postgresql", "mysql") else {}
    try:
        url = sqlalchemy.make_url(uri)
        if dialect == "sqlite" and url.database and not url.database.startswith("file:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # as MLflow does
        engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=connect_args)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except (OSError, ImportError, sqlalchemy.exc.SQLAlchemyError) as exc:
        raise RegistryUnavailableError(
            f"Cannot open the MLflow store {shown_uri(uri)}: {str(exc).splitlines()[0]}. Check that the database "
            "(server, or the SQLite file and its folder) exists and is readable and writable, or set "
            "MODELOPS_MLFLOW_TRACKING_URI to a reachable store."
        ) from exc


def check_adapter_complete(adapter_dir: Path) -> None:
    """Raise RegistryError unless `adapter_dir` holds a whole saved adapter.

    save_adapter writes the PEFT files, then the label map, then the manifest last; a folder whose manifest is
    missing or unreadable was interrupted mid-save and must never become a model version.
    """
    from modelops.core.training.train import ADAPTER_MANIFEST, LABELS_FILE

    adapter_dir = Path(adapter_dir)
    missing = [name for name in (*ADAPTER_FILES, LABELS_FILE, ADAPTER_MANIFEST) if not (adapter_dir / name).is_file()]
    problem = f"missing {missing}" if missing else ""
    if not missing:
        try:
            json.loads((adapter_dir / ADAPTER_MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            problem = f"unreadable {ADAPTER_MANIFEST} ({exc})"
    if problem:
        raise RegistryError(f"Adapter folder {adapter_dir} is incomplete ({problem}), so it was not registered: its "
                            "training was interrupted while saving. Train again.")
