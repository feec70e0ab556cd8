"""Drift checks on synthetic traffic built with numpy: descriptors, no-drift baselines, each kind of shift,
severity, small windows, the accuracy-drop rule, metadata, the HTML report and config loading. Every check runs
under thresholds calibrated on the reference (modelops.core.monitoring.drift_calibration)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops.core.config_files import ConfigError, load_config
from modelops.core.monitoring.drift import (
    DriftInputError, DriftResult, build_vocabulary, check_drift, estimate_accuracy, output_shares, text_descriptors,
)
from modelops.core.monitoring.drift_calibration import DriftCalibration, calibrate_drift
from modelops.core.monitoring.drift_config import DriftConfig
from modelops.settings import PACKAGE_CONFIG_DIR
from modelops_tests.helpers import SHIFTS, traffic

DEFAULT_CONFIG = PACKAGE_CONFIG_DIR / "drift.yaml"
EXPECTED_DRIFTED = {
    "new_words": {"oov_rate"},
    "other_language": {"oov_rate", "has_non_ascii", "embedding"},
    "longer_texts": {"text_length", "word_count"},
    "label_mix": {"predicted_label"},
    "lower_confidence": {"confidence"},
    "embedding_shift": {"embedding"},
}


@pytest.fixture(scope="module")
def config() -> DriftConfig:
    return load_config(DEFAULT_CONFIG, DriftConfig)


@pytest.fixture(scope="module")
def vocabulary() -> frozenset[str]:
    """The vocabulary of a training-like sample of the reference distribution."""
    return build_vocabulary(traffic(3000, seed=99)["text"])


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return traffic(5000, seed=1)


@pytest.fixture(scope="module")
def calibration(reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig) -> DriftCalibration:
    return calibrate_drift(reference, vocabulary, config)


@pytest.fixture(scope="module")
def shifted_results(reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig,
                    calibration: DriftCalibration) -> dict[str, DriftResult]:
    """One check per kind of shift on 400-row windows."""
    return {name: check_drift(reference, traffic(400, seed=7, **shift), vocabulary, config, calibration)
            for name, shift in SHIFTS.items()}


# ---------------------------------------------------------------------------------------------- descriptors


def test_text_descriptors_values() -> None:
    texts = ["Hello, world!", "", "Größe über", "foo foo BAR"]
    table = text_descriptors(texts, frozenset({"hello", "world", "foo"}))
    assert list(table.columns) == ["text_length", "word_count", "oov_rate", "has_non_ascii"]
    assert table["text_length"].tolist() == [13, 0, 10, 11]
    assert table["word_count"].tolist() == [2, 0, 2, 3]
    assert table["oov_rate"].tolist() == pytest.approx([0.0, 0.0, 1.0, 1 / 3])
    assert table["has_non_ascii"].tolist() == [0, 0, 1, 0]


def test_vocabulary_tokenisation_and_min_count() -> None:
    texts = ["Refund my ORDER, please.", "refund the order", "Größe!"]
    assert build_vocabulary(texts) == {"refund", "my", "order", "please", "the", "größe"}
    assert build_vocabulary(texts, min_count=2) == {"refund", "order"}


def test_oov_rate_is_zero_on_the_vocabulary_texts() -> None:
    texts = ["Where is my parcel?", "Card charged TWICE", "Rückerstattung bitte"]
    assert text_descriptors(texts, build_vocabulary(texts))["oov_rate"].tolist() == [0.0, 0.0, 0.0]


def test_estimate_accuracy_is_mean_confidence() -> None:
    assert estimate_accuracy(np.array([0.9, 0.7, 0.8])) == pytest.approx(0.8)
    assert math.isnan(estimate_accuracy(np.array([])))
    with pytest.raises(DriftInputError, match=r"\[0, 1\]"):
        estimate_accuracy(np.array([0.5, 1.2]))


# ---------------------------------------------------------------------------------------------- drift decisions


@pytest.mark.parametrize(("n_rows", "seed"), [(300, 11), (300, 12), (1000, 13)])
def test_no_drift_on_the_same_distribution(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration,
    n_rows: int, seed: int
) -> None:
    result = check_drift(reference, traffic(n_rows, seed=seed), vocabulary, config, calibration)
    assert result.skipped_reason is None
    assert (result.drift_detected, result.severity, result.drifted_columns) == (False, "none", [])
    assert not result.retrain_recommended
    assert set(result.column_scores) == {"text_length", "word_count", "oov_rate", "has_non_ascii",
                                         "predicted_label", "confidence", "embedding"}
    assert all(score < result.thresholds[column] for column, score in result.column_scores.items())
    assert result.estimated_accuracy_reference - result.estimated_accuracy_current < result.accuracy_drop_band


@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_each_kind_of_shift_is_detected(shifted_results: dict[str, DriftResult], shift: str) -> None:
    result = shifted_results[shift]
    assert result.drift_detected
    assert EXPECTED_DRIFTED[shift] <= set(result.drifted_columns)
    assert result.share_drifted == pytest.approx(len(result.drifted_columns) / 7)


def test_severity_levels(shifted_results: dict[str, DriftResult], config: DriftConfig) -> None:
    assert shifted_results["label_mix"].severity == "moderate"  # 1 of 7 columns, confidences unchanged
    assert not shifted_results["label_mix"].accuracy_drop_significant
    assert shifted_results["other_language"].severity == "severe"  # >= 4 of 7 columns
    assert shifted_results["other_language"].share_drifted >= config.severe_share
    lower = shifted_results["lower_confidence"]  # 1 column, but the estimated accuracy falls ~13 points
    assert lower.share_drifted < config.severe_share and lower.accuracy_drop_significant
    assert lower.severity == "severe"


def test_severity_follows_the_configured_shares(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration
) -> None:
    current = traffic(400, seed=7, **SHIFTS["label_mix"])
    lenient = config.model_copy(update={"moderate_share": 0.3, "severe_share": 0.6})
    lenient_result = check_drift(reference, current, vocabulary, lenient, calibration)
    assert (lenient_result.severity, lenient_result.drift_detected) == ("none", False)
    # still reported, below the share for a decision (the label mix also moves the per-label embeddings)
    assert "predicted_label" in lenient_result.drifted_columns and lenient_result.share_drifted < 0.3


def test_small_windows_are_skipped(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration
) -> None:
    shifted = traffic(config.min_window_rows - 1, seed=3, **SHIFTS["other_language"])
    result = check_drift(reference, shifted, vocabulary, config, calibration)
    assert result.skipped_reason is not None and "min_window_rows" in result.skipped_reason
    assert (result.drift_detected, result.severity, result.retrain_recommended) == (False, "none", False)
    assert (result.column_scores, result.drifted_columns, result.html) == ({}, [], "")
    small_reference = check_drift(reference.head(10), traffic(500, seed=3), vocabulary, config, calibration)
    assert small_reference.skipped_reason is not None and "reference" in small_reference.skipped_reason


def test_require_accuracy_drop(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration,
    shifted_results: dict[str, DriftResult]
) -> None:
    low_confidence = traffic(400, seed=7, **SHIFTS["lower_confidence"])  # mean confidence 0.80 -> 0.67
    longer = traffic(400, seed=7, **SHIFTS["longer_texts"])  # drift, confidences unchanged
    gated = config.model_copy(update={"require_accuracy_drop": True, "accuracy_drop_threshold": 0.05})
    dropped = check_drift(reference, low_confidence, vocabulary, gated, calibration)
    assert dropped.estimated_accuracy_reference - dropped.estimated_accuracy_current > 0.1
    assert dropped.retrain_recommended
    assert not check_drift(reference, longer, vocabulary, gated, calibration).retrain_recommended
    too_high = gated.model_copy(update={"accuracy_drop_threshold": 0.2})
    assert not check_drift(reference, low_confidence, vocabulary, too_high, calibration).retrain_recommended
    ungated = shifted_results["longer_texts"]  # default config: require_accuracy_drop false
    assert not config.require_accuracy_drop and ungated.drift_detected and ungated.retrain_recommended


def test_check_is_deterministic_with_subsampling(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration
) -> None:
    small = config.model_copy(update={"max_reference_rows": 1000, "max_current_rows": 500})
    current = traffic(6000, seed=5)
    first = check_drift(reference, current, vocabulary, small, calibration)
    second = check_drift(reference, current, vocabulary, small, calibration)
    assert first.column_scores == second.column_scores
    assert (first.n_reference, first.n_current, first.drift_detected) == (5000, 6000, False)


def test_reference_without_embeddings_skips_embedding_drift_with_a_note(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration
) -> None:
    result = check_drift(reference.drop(columns=["embedding"]), traffic(400, seed=8), vocabulary, config, calibration)
    assert "embedding" not in result.column_scores and len(result.column_scores) == 6
    assert any("embedding" in note for note in result.notes)
    assert "embedding" in result.to_metadata()["notes"]


def test_missing_columns_are_rejected(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration
) -> None:
    with pytest.raises(DriftInputError, match="confidence"):
        check_drift(reference, traffic(300, seed=2).drop(columns=["confidence"]), vocabulary, config, calibration)


# ---------------------------------------------------------------------------------------------- outputs


def test_output_shares_name_the_outputs_that_moved_most_first() -> None:
    reference = pd.DataFrame({"predicted_label": ["a"] * 50 + ["b"] * 30 + ["unusable"] * 20})
    window = pd.DataFrame({"predicted_label": ["a"] * 10 + ["b"] * 30 + ["unusable"] * 55 + ["new"] * 5})
    assert output_shares(reference, window) == [("a", 0.5, 0.1), ("unusable", 0.2, 0.55), ("new", 0.0, 0.05),
                                                ("b", 0.3, 0.3)]
    assert output_shares(reference, window, top=1) == [("a", 0.5, 0.1)]


def test_a_checked_window_reports_its_output_shares(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration
) -> None:
    window = traffic(300, seed=2)
    window.loc[:149, "predicted_label"] = "unusable"
    result = check_drift(reference, window, vocabulary, config, calibration)
    assert result.output_shares[0][0] == "unusable" and result.output_shares[0][1:] == (0.0, 0.5)
    assert "| unusable | 0.0% | 50.0% |" in result.output_shares_markdown()


def test_to_metadata_is_flat_and_snake_case(shifted_results: dict[str, DriftResult]) -> None:
    metadata = shifted_results["other_language"].to_metadata()
    expected = {"n_reference", "n_current", "skipped", "skipped_reason", "drift_detected", "severity",
                "share_drifted", "n_drifted_columns", "drifted_columns", "estimated_accuracy_reference",
                "estimated_accuracy_current", "estimated_accuracy_drop", "retrain_recommended", "seconds", "notes",
                "estimated_accuracy_drop_band", "estimated_accuracy_drop_significant", "new_topic_candidates",
                "new_topic_share"}
    expected |= {f"drift_{kind}_{column}" for kind in ("score", "threshold") for column in (
        "text_length", "word_count", "oov_rate", "has_non_ascii", "predicted_label", "confidence", "embedding")}
    assert set(metadata) == expected
    assert all(key == key.lower() and " " not in key for key in metadata)
    assert all(isinstance(value, float | int | str | bool) for value in metadata.values())
    assert metadata["severity"] == "severe" and metadata["drift_detected"] is True
    assert "oov_rate" in str(metadata["drifted_columns"])


def test_html_report_is_a_standalone_evidently_page(shifted_results: dict[str, DriftResult]) -> None:
    html = shifted_results["embedding_shift"].html
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "Embedding drift" in html and "Jensen-Shannon" in html


def test_check_time_by_window_size(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """Prints (does not assert) the end-to-end seconds of a check for 1k, 10k and 100k current rows."""
    window = traffic(10_000, seed=21)
    timings = {}
    for n_rows in (1_000, 10_000, 100_000):
        current = window.head(n_rows) if n_rows <= len(window) else pd.concat([window] * 10, ignore_index=True)
        started = time.perf_counter()
        result = check_drift(reference, current, vocabulary, config, calibration)
        timings[n_rows] = time.perf_counter() - started
        assert result.skipped_reason is None and result.n_current == n_rows
    with capsys.disabled():
        print("\ndrift check seconds by current rows:", {n: round(s, 2) for n, s in timings.items()})


# ---------------------------------------------------------------------------------------------- config


def test_shipped_config_loads(config: DriftConfig) -> None:
    assert config.min_window_rows == 200 and 0 < config.moderate_share <= config.severe_share <= 1


def write_config(tmp_path: Path, **changes: Any) -> Path:
    """A copy of the shipped config with keys changed (value None removes the key)."""
    body = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    body.update(changes)
    body = {key: value for key, value in body.items() if value is not None}
    path = tmp_path / "drift.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": None}, "seed: missing required key"),
        ({"min_window_row": 10}, r"min_window_row: unknown key; expected one of \['min_window_rows'"),
        ({"min_window_rows": "many"}, "min_window_rows: Input should be a valid integer"),
        ({"min_window_rows": 0}, "min_window_rows: Input should be greater than or equal to 1, got 0"),
        ({"column_drift_threshold": 0.17}, "'column_drift_threshold' is no longer read.*fixed_thresholds"),
        ({"false_alarm_rate": 0}, "false_alarm_rate: Input should be greater than 0"),
        ({"false_alarm_rate": 0.7}, "false_alarm_rate: Input should be less than or equal to 0.5"),
        ({"false_alarm_rate": "1%"}, "false_alarm_rate: Input should be a valid number"),
        ({"calibration_replicates": 10}, "calibration_replicates: Input should be greater than or equal to 50"),
        ({"fixed_thresholds": {"colour": 0.2}}, "fixed_thresholds: unknown column 'colour'"),
        ({"fixed_thresholds": {"predicted_label": 2}}, r"fixed_thresholds: predicted_label: must be in \[0.0, 1.0\]"),
        ({"moderate_share": 0.0}, "moderate_share: Input should be greater than 0"),
        ({"moderate_share": 0.6, "severe_share": 0.5}, r"severe_share must be in \[moderate_share, 1\]"),
        ({"require_accuracy_drop": "yes please"}, "require_accuracy_drop: Input should be a valid boolean"),
        ({"fixed_thresholds": {"embedding": 0.4}}, r"fixed_thresholds: embedding: must be in \(0.5, 1.0\]"),
        ({"min_window_rows": 10_000}, "must not exceed max_reference_rows"),
    ],
)
def test_config_errors_name_the_file_and_the_key(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    path = write_config(tmp_path, **changes)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path, DriftConfig)
    assert str(error.value).startswith(f"{path}: ")


def test_calibration_keys_are_optional(tmp_path: Path) -> None:
    path = write_config(tmp_path, false_alarm_rate=None, calibration_replicates=None, fixed_thresholds=None)
    loaded = load_config(path, DriftConfig)
    assert (loaded.false_alarm_rate, loaded.calibration_replicates, loaded.fixed_thresholds) == (0.01, 400, {})


def test_fixed_thresholds_override_the_calibrated_ones(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration
) -> None:
    current = traffic(400, seed=11)
    pinned = config.model_copy(update={"fixed_thresholds": {"text_length": 0.0, "embedding": 0.99}})
    result = check_drift(reference, current, vocabulary, pinned, calibration)
    assert result.thresholds["text_length"] == 0.0 and result.thresholds["embedding"] == 0.99
    assert result.drifted_columns == ["text_length"]  # any distance >= 0: the override, not the calibration, decides
    assert result.thresholds["confidence"] == calibration.column_threshold("confidence", 400)


def test_config_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml", DriftConfig)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "list.yaml", DriftConfig)
    (tmp_path / "broken.yaml").write_text("seed: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "broken.yaml", DriftConfig)


def test_embedding_dimension_mismatch_is_rejected(
    reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig, calibration: DriftCalibration
) -> None:
    current = traffic(300, seed=2)
    current["embedding"] = [vector[:16] for vector in current["embedding"]]
    with pytest.raises(DriftInputError, match="embedding dimension differs"):
        check_drift(reference, current, vocabulary, config, calibration)
