"""One loader for every file an owner edits: the policy files (training, evaluation, drift, retrain) and modelops.yaml.

Each file, or each section of one, is a pydantic model that rejects unknown keys. `load_config` reads the YAML and
validates it; every error is a ConfigError that names the file and the field (`drift.yaml: severe_share: ...`), so a
typo cannot silently change a policy and a wrong value says where to fix it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(ValueError):
    """A config file or value modelops cannot use; names the file (when there is one) and the field."""

    def __init__(self, problem: str, path: Path | None = None, field: str = "") -> None:
        self.problem, self.path, self.field = problem, path, field
        super().__init__(": ".join(part for part in (str(path) if path else "", field, problem) if part))


class PolicyModel(BaseModel):
    """A policy file or section: immutable, unknown keys rejected, no type coercion."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # YAML types are meant: "5" is no number
    written_keys: ClassVar[tuple[str, ...]] = ()  # keys a file must state (their defaults serve code and tests only)

    @model_validator(mode="before")
    @classmethod
    def _written_in_file(cls, values: Any, info: ValidationInfo) -> Any:
        if info.context and info.context.get("from_file") and isinstance(values, dict):
            missing = [key for key in cls.written_keys if key not in values]
            if missing:
                raise ValueError(f"missing required key(s) {missing}; every one of {list(cls.written_keys)} must be "
                                 "set in the file")
        return values


def read_mapping(path: Path) -> dict[str, Any]:
    """The YAML mapping in `path` (an empty file is an empty mapping)."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", path) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}", path) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"expected a mapping of settings, got {type(document).__name__}", path)
    return document


def validated(model: type[Model], values: Any, path: Path | None = None, section: str = "") -> Model:
    """`values` as `model`, or a ConfigError naming the file and the first invalid field (dotted, within `section`)."""
    try:
        return model.model_validate(values, context={"from_file": path is not None})
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(_problem(model, first), path, _location(section, first["loc"])) from None


def load_config(path: Path, model: type[Model], section: str = "") -> Model:
    """The file at `path` (or its top-level `section`) as `model`."""
    values = read_mapping(path)
    if section:
        if section not in values:
            raise ConfigError("missing section", path, section)
        values = values[section]
    return validated(model, values, path, section)


def _location(section: str, loc: tuple[str | int, ...]) -> str:
    """`section.key.sub[3].key`: where in the file a field is."""
    text = section
    for part in loc:
        text += f"[{part}]" if type(part) is int else f"{'.' if text else ''}{part}"
    return text


def _problem(model: type[BaseModel], error: Any) -> str:
    """pydantic's message, with the keys a model knows when the key is unknown and a hint for unquoted labels."""
    if error["type"] == "extra_forbidden":
        return f"unknown key; expected one of {list(_model_at(model, error['loc'][:-1]).model_fields)}"
    if error["type"] == "missing":
        return "missing required key"
    if error["type"] == "value_error":
        return error["msg"].removeprefix("Value error, ")
    hint = "; quote it in YAML" if error["type"] == "string_type" and isinstance(error["input"], (bool, int)) else ""
    return f"{error['msg']}, got {error['input']!r}{hint}"


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The (sub-)model a location inside `model` points into; list indices and mapping keys pass through."""
    for part in loc:
        if isinstance(part, str) and part in model.model_fields:
            model = _models_in(model.model_fields[part].annotation)[0]
    return model


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds: itself, or those inside list[...], dict[..., ...], X | None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]
