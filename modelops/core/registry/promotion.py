"""Promotion of a challenger the gate passed: the `champion` alias moves to it, and its drift reference (predictions
on held-out curated rows) and drift calibration are saved, the calibration also in the version's MLflow run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from modelops.core.monitoring.drift_calibration import DriftCalibration
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.serving.predictor import Classifier


class PromotionRefused(ValueError):
    """The gate refused the challenger; the champion stays."""


@dataclass(frozen=True)
class Promotion:
    """The new champion, the one before it, and the drift monitoring made for it (or why there is none)."""

    version: str
    previous: str | None
    reference_rows: int
    calibration: DriftCalibration | None
    calibration_error: str  # why drift monitoring is off for the new champion; empty when calibrated


GENERATIVE_MONITORING_OFF = "drift monitoring of generative customisations is not built yet"


def promote_champion(registry: ModelRegistry, evaluation: dict, curated: pd.DataFrame,
                     load_classifier: Callable[[str], Classifier], reference_dir: Path,
                     drift_config: DriftConfig) -> Promotion:
    """Promote the evaluated challenger (the evaluation record's) if the gate passed it, else PromotionRefused."""
    version = _passed_version(evaluation)
    current = registry.alias_version("champion")
    rows, calibration = _save_drift_reference(registry, version, curated, load_classifier(version), reference_dir,
                                              drift_config)
    previous = current if current == version else registry.promote(version, reason=evaluation["gate_markdown"])
    if isinstance(calibration, str):
        return Promotion(version, previous, rows, None, calibration)
    return Promotion(version, previous, rows, calibration, "")


def promote_generative(registry: ModelRegistry, evaluation: dict) -> Promotion:
    """Promote an evaluated generative challenger if the gate passed it, else PromotionRefused; it gets no drift
    reference (GENERATIVE_MONITORING_OFF)."""
    version = _passed_version(evaluation)
    current = registry.alias_version("champion")
    previous = current if current == version else registry.promote(version, reason=evaluation["gate_markdown"])
    return Promotion(version, previous, 0, None, GENERATIVE_MONITORING_OFF)


def _passed_version(evaluation: dict) -> str:
    """The evaluated challenger's version, or PromotionRefused when the gate refused it."""
    version = evaluation["challenger_version"]
    if not evaluation["passed"]:
        raise PromotionRefused(f"Gate refused v{version}; champion unchanged. Reasons: {evaluation['reasons']}")
    return version


def _save_drift_reference(registry: ModelRegistry, version: str, curated: pd.DataFrame, classifier: Classifier,
                          directory: Path, config: DriftConfig) -> tuple[int, DriftCalibration | str]:
    """Store the new champion's predictions on held-out curated data (the reference its traffic is compared with)
    and the drift calibration made from them (also in the version's MLflow run), or why it cannot be made."""
    from modelops.core.monitoring.drift_calibration import DriftCalibrationError
    from modelops.core.monitoring.reference import curated_reference, reference_calibration, save_reference

    frame, vocabulary = curated_reference(classifier, curated)
    save_reference(directory, version, frame, vocabulary)
    try:
        calibration = reference_calibration(directory, version, frame, vocabulary, config)
    except DriftCalibrationError as error:
        return len(frame), str(error)
    run_id = registry.version_info(version)["run_id"]
    registry.log_text(run_id, calibration.to_json(), "drift/calibration.json")
    registry.log_text(run_id, calibration.markdown(), "drift/calibration.md")
    return len(frame), calibration
