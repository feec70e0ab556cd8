"""One drift check of captured traffic as the loop runs it: the champion's reference (calibrated for the policy), the
window of traffic checked, and the check's MLflow run (metrics, Evidently report, scores against the calibrated
thresholds, candidate new intents)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.core.tags import MlflowArtifact, MlflowTag

if TYPE_CHECKING:
    import pandas as pd

    from modelops.core.evaluation.evaluation_policy import GenerationPolicy
    from modelops.core.monitoring.drift import DriftResult
    from modelops.core.monitoring.drift_calibration import DriftCalibration
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.core.monitoring.traffic import TrafficWindow
    from modelops.core.registry.registry import ModelRegistry


class DriftMonitoringError(ValueError):
    """Traffic cannot be checked as things stand (no champion reference, too little traffic); the message says why."""


@dataclass(frozen=True)
class ChampionReference:
    """What a champion's traffic is compared with: its predictions on held-out rows, its training vocabulary and the
    drift thresholds calibrated on them."""

    version: str
    frame: pd.DataFrame
    vocabulary: frozenset[str]
    calibration: DriftCalibration

    @property
    def embedding_dim(self) -> int | None:
        """Length of the reference's embeddings (traffic rows of another length cannot be compared), None without."""
        vectors = [v for v in self.frame.get("embedding", []) if v is not None]
        return len(vectors[0]) if vectors else None


@dataclass(frozen=True)
class CheckedWindow:
    """A checked window's drift result, its key (fingerprint of its batches), the champion it was checked against and
    the MLflow run of its report."""

    result: DriftResult
    key: str
    champion: str
    report_run: str


def champion_reference(registry: ModelRegistry, directory: Path, config: DriftConfig) -> ChampionReference:
    """The current champion's reference in `directory` and its drift calibration (calibrated now when it has none
    for this policy); DriftMonitoringError when there is none."""
    from modelops.core.monitoring.drift_calibration import DriftCalibrationError
    from modelops.core.monitoring.reference import load_reference, reference_calibration

    champion = registry.alias_version("champion")
    reference = load_reference(directory, champion) if champion else None
    if reference is None:
        raise DriftMonitoringError(f"no drift reference for champion {champion} yet; bootstrap a champion first")
    try:
        calibration = reference_calibration(directory, champion, *reference, config)
    except DriftCalibrationError as error:
        raise DriftMonitoringError(f"no drift calibration for champion {champion}: {error}") from error
    return ChampionReference(champion, *reference, calibration)


def newest_window(production_dir: Path, rows: int, max_text_chars: int, embedding_dim: int | None,
                  generation: GenerationPolicy | None = None) -> TrafficWindow:
    """The newest captured batches holding at least `rows` valid rows (DriftMonitoringError when there are fewer); a
    causal LM's responses read as traffic under its `generation` policy."""
    from modelops.core.monitoring.traffic import TrafficWindow, list_batches, validate_batch

    newest_first = []
    for batch_id in reversed(list_batches(production_dir)):
        if sum(len(b.valid) for b in newest_first) >= rows:
            break
        newest_first.append(validate_batch(production_dir, batch_id, max_text_chars, embedding_dim, generation))
    window = TrafficWindow(newest_first[::-1])
    if len(window.valid) < rows:
        raise DriftMonitoringError(f"not enough captured traffic: {len(window.valid)} valid rows, {rows} needed")
    return window


def check_window(registry: ModelRegistry, window: TrafficWindow, reference: ChampionReference,
                 config: DriftConfig) -> CheckedWindow:
    """Evidently drift check of a window against the champion's reference, reported as an MLflow run."""
    from modelops.core.monitoring.drift import check_drift
    from modelops.core.monitoring.drift_decision import window_key

    result = check_drift(reference.frame, window.valid, reference.vocabulary, config, reference.calibration)
    key = window_key(window.usable_ids)
    return CheckedWindow(result, key, reference.version,
                         _log_report(registry, key, result, reference, window.usable_ids))


def _log_report(registry: ModelRegistry, key: str, result: DriftResult, reference: ChampionReference,
                batch_ids: list[str]) -> str:
    from modelops.core.monitoring.new_topics import topics_markdown

    champion = reference.version
    with registry.run(f"drift-check-{key}", {MlflowTag.DRIFT_EVENT: key, MlflowTag.CHAMPION_VERSION: champion,
                                             MlflowTag.DRIFT_BATCHES: ",".join(batch_ids)[:4900]}) as run_id:
        registry.log_metrics(run_id, {k: float(v) for k, v in result.to_metadata().items()
                                      if isinstance(v, (int, float))})
        registry.log_text(run_id, result.html, MlflowArtifact.DRIFT_REPORT)
        registry.log_text(run_id, f"# Drift check {key}\n\n{result.scores_markdown()}\n\n## Calibration of champion "
                                  f"v{champion}\n\n{reference.calibration.markdown()}\n\n## Outputs whose share moved "
                                  f"most\n\n{result.output_shares_markdown()}\n", "drift/thresholds.md")
        registry.log_text(run_id, f"# Candidate new intents in {key}\n\n{topics_markdown(result.new_topics)}\n",
                          "drift/new_topics.md")
    return run_id
