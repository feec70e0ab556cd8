"""The drift policy (config/drift.yaml, see the comments there): false-alarm rate, window sizes, severity shares."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from modelops.core.config_files import PolicyModel

DESCRIPTOR_COLUMNS = ("text_length", "word_count", "oov_rate", "has_non_ascii")
LABEL_COLUMN = "predicted_label"
CONFIDENCE_COLUMN = "confidence"
EMBEDDING_COLUMN = "embedding"
RESPONSE_TOKENS_COLUMN = "response_tokens"  # a generative model's response length: checked when its reference has it
CHECKED_COLUMNS = (*DESCRIPTOR_COLUMNS, LABEL_COLUMN, CONFIDENCE_COLUMN, RESPONSE_TOKENS_COLUMN, EMBEDDING_COLUMN)
REPLACED_KEYS = ("column_drift_threshold", "label_drift_threshold", "embedding_auc_threshold")
NO_DRIFT = "none"
SEVERITIES = (NO_DRIFT, "moderate", "severe")  # a drift check's verdicts, weakest first


class DriftConfig(PolicyModel):
    """Drift-check policy: every key without a default is required."""

    min_window_rows: int = Field(ge=1)
    max_reference_rows: int = Field(ge=1)
    max_current_rows: int = Field(ge=1)
    moderate_share: float = Field(gt=0, le=1)
    severe_share: float = Field(le=1)
    accuracy_drop_threshold: float = Field(ge=0, le=1)
    require_accuracy_drop: bool
    seed: int = Field(ge=0)
    false_alarm_rate: float = Field(0.01, gt=0, le=0.5)  # probability that a stable window raises drift (all tests)
    calibration_replicates: int = Field(400, ge=50)  # stable windows drawn per window size to calibrate
    fixed_thresholds: dict[str, float] = {}  # explicit per-column override of the calibrated threshold

    @model_validator(mode="before")
    @classmethod
    def _no_replaced_keys(cls, values: object) -> object:
        for key in REPLACED_KEYS:
            if isinstance(values, dict) and key in values:
                raise ValueError(f"'{key}' is no longer read: thresholds are calibrated on the champion's held-out "
                                 "rows for false_alarm_rate; to pin one, use fixed_thresholds: {<column>: <value>}")
        return values

    @field_validator("fixed_thresholds")
    @classmethod
    def _known_columns(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for column, value in thresholds.items():
            if column not in CHECKED_COLUMNS:
                raise ValueError(f"unknown column {column!r}; expected one of {list(CHECKED_COLUMNS)}")
            low, bracket = (0.5, "(") if column == EMBEDDING_COLUMN else (0.0, "[")
            if not (low < value <= 1 if column == EMBEDDING_COLUMN else low <= value <= 1):
                raise ValueError(f"{column}: must be in {bracket}{low}, 1.0], got {value}")
        return thresholds

    @model_validator(mode="after")
    def _consistent(self) -> DriftConfig:
        if self.severe_share < self.moderate_share:
            raise ValueError(f"severe_share must be in [moderate_share, 1], got {self.severe_share}")
        if self.min_window_rows > min(self.max_reference_rows, self.max_current_rows):
            raise ValueError("min_window_rows must not exceed max_reference_rows or max_current_rows")
        return self
