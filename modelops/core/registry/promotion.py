"""Promotion of a challenger the gate passed: the `champion` alias moves to it, and its drift reference (predictions
on held-out curated rows; a generative champion's generations for held-out prompts) and drift calibration are saved,
the calibration also in the version's MLflow run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from modelops.core.evaluation.evaluation_policy import GenerationPolicy
    from modelops.core.monitoring.drift_calibration import DriftCalibration
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.serving.generation import Generation
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


def promote_champion(registry: ModelRegistry, evaluation: dict, curated: pd.DataFrame,
                     load_classifier: Callable[[str], Classifier], reference_dir: Path,
                     drift_config: DriftConfig) -> Promotion:
    """Promote the evaluated challenger (the evaluation record's) if the gate passed it, else PromotionRefused."""
    from modelops.core.monitoring.reference import curated_reference

    version = _passed_version(evaluation)
    frame, vocabulary = curated_reference(load_classifier(version), curated)
    return _promote(registry, version, evaluation, frame, vocabulary, reference_dir, drift_config)


def promote_generative(registry: ModelRegistry, evaluation: dict, curated: pd.DataFrame,
                       generate_for: Callable[[str, list[str]], list[Generation]], reference_dir: Path,
                       drift_config: DriftConfig, policy: GenerationPolicy) -> Promotion:
    """Promote an evaluated generative challenger if the gate passed it, else PromotionRefused; its drift reference
    is its generations (`generate_for(version, prompts)`) for the held-out prompts, seen as traffic under `policy`
    (monitoring.generation_traffic)."""
    from modelops.core.monitoring.generation_traffic import generation_reference

    version = _passed_version(evaluation)
    held_out, train = curated[curated["split"] != "train"], curated[curated["split"] == "train"]
    prompts = held_out["prompt"].tolist()
    frame, vocabulary = generation_reference(generate_for(version, prompts), prompts, held_out["response"].tolist(),
                                             train["prompt"].tolist(), policy)
    return _promote(registry, version, evaluation, frame, vocabulary, reference_dir, drift_config)


def _passed_version(evaluation: dict) -> str:
    """The evaluated challenger's version, or PromotionRefused when the gate refused it."""
    version = evaluation["challenger_version"]
    if not evaluation["passed"]:
        raise PromotionRefused(f"Gate refused v{version}; champion unchanged. Reasons: {evaluation['reasons']}")
    return version


def _promote(registry: ModelRegistry, version: str, evaluation: dict, frame: pd.DataFrame,
             vocabulary: frozenset[str], directory: Path, config: DriftConfig) -> Promotion:
    """Save `version`'s drift reference and its calibration (also in the version's MLflow run; or why it cannot be
    made), then move the champion alias to it."""
    from modelops.core.monitoring.drift_calibration import DriftCalibrationError
    from modelops.core.monitoring.reference import reference_calibration, save_reference

    current = registry.alias_version("champion")
    save_reference(directory, version, frame, vocabulary)
    try:
        calibration = reference_calibration(directory, version, frame, vocabulary, config)
    except DriftCalibrationError as error:
        calibration = None
        reason = str(error)
    else:
        run_id = registry.version_info(version)["run_id"]
        registry.log_text(run_id, calibration.to_json(), "drift/calibration.json")
        registry.log_text(run_id, calibration.markdown(), "drift/calibration.md")
        reason = ""
    previous = current if current == version else registry.promote(version, reason=evaluation["gate_markdown"])
    return Promotion(version, previous, len(frame), calibration, reason)
