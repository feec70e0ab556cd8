"""Drift calibration: the statistic equals Evidently's, thresholds follow the number of labels and the window size,
constant columns, stored with the champion's reference and recomputed for a new champion or a new policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.core.monitoring import drift_calibration
from modelops.core.monitoring.drift import DriftInputError, build_vocabulary, check_drift, checked_table
from modelops.core.monitoring.drift_config import DriftConfig
from modelops.core.config_files import load_config
from modelops.core.monitoring.drift_calibration import (
    JS_COLUMNS,
    DriftCalibration,
    DriftCalibrationError,
    auc_null_threshold,
    calibrate_drift,
    calibration_window_sizes,
    js_distance,
)
from modelops.core.monitoring.reference import calibration_path, reference_calibration
from modelops.settings import PACKAGE_CONFIG_DIR
from modelops_tests.helpers import traffic


@pytest.fixture(scope="module")
def config() -> DriftConfig:
    """The shipped policy with fewer calibration replicates (the fitted tail needs only a mean and a variance)."""
    shipped = load_config(PACKAGE_CONFIG_DIR / "drift.yaml", DriftConfig)
    return shipped.model_copy(update={"calibration_replicates": 150})


def many_label_traffic(n: int, labels: int, seed: int) -> pd.DataFrame:
    """Traffic whose predicted labels are spread evenly over `labels` classes (texts as in test_drift)."""
    frame = traffic(n, seed=seed)
    frame["predicted_label"] = [f"intent_{i}" for i in np.random.default_rng(seed).integers(labels, size=n)]
    return frame


def test_js_distance_equals_evidentlys_score(config: DriftConfig) -> None:
    reference, current = traffic(1500, seed=1), traffic(300, seed=2, label_mix=(0.3, 0.3, 0.4), mean_words=9.0)
    vocabulary = build_vocabulary(traffic(1000, seed=99)["text"])
    calibration = calibrate_drift(reference, vocabulary, config)
    result = check_drift(reference, current, vocabulary, config, calibration)
    ours = checked_table(reference, vocabulary, config.max_reference_rows, config.seed)
    theirs = checked_table(current, vocabulary, config.max_current_rows, config.seed + 1)
    for column in JS_COLUMNS:
        expected = js_distance(ours[column].to_numpy(), theirs[column].to_numpy(), column == "predicted_label")
        assert result.column_scores[column] == pytest.approx(expected, abs=1e-12), column


def test_thresholds_grow_with_the_number_of_labels_and_shrink_with_the_window(config: DriftConfig) -> None:
    vocabulary = build_vocabulary(traffic(1000, seed=99)["text"])
    few = calibrate_drift(many_label_traffic(2000, labels=3, seed=1), vocabulary, config)
    many = calibrate_drift(many_label_traffic(2000, labels=150, seed=1), vocabulary, config)
    assert few.window_sizes == many.window_sizes == [200, 400, 800, 1000]
    for size in few.window_sizes:
        assert many.column_threshold("predicted_label", size) > 2 * few.column_threshold("predicted_label", size)
    for column in ("text_length", "word_count", "predicted_label", "confidence"):  # oov_rate is 0 here: constant
        doubling = many.thresholds[column][:3]  # 200, 400, 800 rows (at the 1,000 cap the reference part shrinks too)
        assert doubling == sorted(doubling, reverse=True), column
    # A window uses the thresholds of the largest calibrated size that fits it (fewer alarms, never more).
    assert many.column_threshold("confidence", 799) == many.thresholds["confidence"][1]
    assert many.column_threshold("confidence", 100_000) == many.thresholds["confidence"][-1]


def test_a_stable_many_label_window_stays_quiet_where_a_constant_threshold_fires(config: DriftConfig) -> None:
    vocabulary = build_vocabulary(traffic(1000, seed=99)["text"])
    reference = many_label_traffic(3000, labels=150, seed=1)
    calibration = calibrate_drift(reference, vocabulary, config)
    stable = many_label_traffic(200, labels=150, seed=2)
    result = check_drift(reference, stable, vocabulary, config, calibration)
    assert result.column_scores["predicted_label"] > 0.11  # the old constant label threshold would call this drift
    assert not result.drift_detected and result.drifted_columns == []
    shifted = many_label_traffic(200, labels=150, seed=3)
    shifted.loc[:79, "predicted_label"] = "intent_0"  # 40 % of the window moves to one intent
    assert check_drift(reference, shifted, vocabulary, config, calibration).drifted_columns == ["predicted_label"]


@pytest.mark.parametrize(("pool_rare", "pool_rows", "window", "quiet", "loud"), [
    (0, 3000, 200, 1, 10),  # no non-ASCII text in the held-out rows: one such row in a window is chance
    (2, 800, 500, 3, 30),  # two in 800 pin the rate down poorly: three in a 500-row window are still chance
    (400, 4000, 200, 28, 45),  # a 10 % rate is well known: 45 of 200 is drift
])
def test_yes_no_column_allows_what_chance_allows(pool_rare: int, pool_rows: int, window: int, quiet: int,
                                                 loud: int) -> None:
    pool = np.r_[np.ones(pool_rare), np.zeros(pool_rows - pool_rare)]
    threshold = drift_calibration._binary_column_threshold(pool, window, 0.01 / 8)
    distance = {k: js_distance(pool, np.r_[np.ones(k), np.zeros(window - k)], categorical=False) for k in (quiet, loud)}
    assert distance[quiet] < threshold < distance[loud]


def test_auc_null_threshold_is_the_mann_whitney_quantile() -> None:
    # 2500 reference and 100 current rows in the classifier's held-out half: sd = sqrt(2601 / (12 * 250000)).
    assert auc_null_threshold(5000, 200, 0.00135) == pytest.approx(0.5 + 3.0 * 0.029445, abs=2e-4)
    assert auc_null_threshold(5000, 2000, 0.00135) < auc_null_threshold(5000, 200, 0.00135)


def test_window_sizes_and_too_few_held_out_rows() -> None:
    assert calibration_window_sizes(5000, 200, 5000) == [200, 400, 800, 1600, 2500]
    assert calibration_window_sizes(300, 200, 5000) == [200]  # windows drawn with replacement from the other half
    assert calibration_window_sizes(100_000, 200, 1000) == [200, 400, 800, 1000]
    with pytest.raises(DriftCalibrationError, match="150 held-out rows, fewer than min_window_rows=200"):
        calibration_window_sizes(150, 200, 5000)


def test_calibration_is_stored_with_the_champion_and_read_back(
    tmp_path: Path, config: DriftConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    vocabulary = build_vocabulary(traffic(1000, seed=99)["text"])
    reference = traffic(1200, seed=1)
    first = reference_calibration(tmp_path, "3", reference, vocabulary, config)
    assert calibration_path(tmp_path, "3").is_file()

    def no_recalibration(*_args: object) -> DriftCalibration:
        raise AssertionError("a stored calibration for the same policy must be read, not recomputed")

    monkeypatch.setattr(drift_calibration, "calibrate_drift", no_recalibration)
    assert reference_calibration(tmp_path, "3", reference, vocabulary, config) == first  # e.g. after a restart
    with pytest.raises(AssertionError, match="must be read"):  # a new champion has no calibration yet
        reference_calibration(tmp_path, "4", traffic(1200, seed=5), vocabulary, config)
    monkeypatch.undo()
    stricter = config.model_copy(update={"false_alarm_rate": 0.001})
    recalibrated = reference_calibration(tmp_path, "3", reference, vocabulary, stricter)
    assert recalibrated.false_alarm_rate == 0.001
    assert recalibrated.column_threshold("text_length", 200) > first.column_threshold("text_length", 200)
    assert DriftCalibration.from_json(calibration_path(tmp_path, "3").read_text()) == recalibrated


def test_markdown_lists_every_test_at_every_size(config: DriftConfig) -> None:
    calibration = calibrate_drift(traffic(1000, seed=1), build_vocabulary(["a"]), config)
    table = calibration.markdown()
    for name in (*JS_COLUMNS, "embedding", "estimated accuracy drop"):
        assert name in table
    assert "| 200 rows | 400 rows | 500 rows |" in table and "false-alarm rate of 0.01" in table


def generated_traffic(n: int, seed: int, mean_tokens: float) -> pd.DataFrame:
    """Traffic of a generative model: responses of Poisson(mean_tokens) tokens."""
    frame = traffic(n, seed=seed)
    frame["response_tokens"] = np.random.default_rng(seed).poisson(mean_tokens, size=n)
    return frame


def test_a_generative_models_response_length_is_one_more_calibrated_test(config: DriftConfig) -> None:
    vocabulary = build_vocabulary(traffic(1000, seed=99)["text"])
    reference = generated_traffic(1500, seed=1, mean_tokens=20.0)
    calibration = calibrate_drift(reference, vocabulary, config)
    assert list(calibration.thresholds) == [*JS_COLUMNS, "response_tokens"]
    assert calibration.test_level == pytest.approx(config.false_alarm_rate / 9)  # one more test in the union bound
    assert "| response_tokens (JS distance) |" in calibration.markdown() and "(9 tests" in calibration.markdown()
    stable = check_drift(reference, generated_traffic(300, seed=2, mean_tokens=20.0), vocabulary, config, calibration)
    assert "response_tokens" in stable.column_scores and stable.drifted_columns == []
    longer = check_drift(reference, generated_traffic(300, seed=3, mean_tokens=26.0), vocabulary, config, calibration)
    assert longer.drifted_columns == ["response_tokens"]
    with pytest.raises(DriftInputError, match=r"current window lacks \['response_tokens'\]"):
        check_drift(reference, traffic(300, seed=4), vocabulary, config, calibration)


def test_a_classifiers_traffic_has_no_response_length_to_check(config: DriftConfig) -> None:
    reference = traffic(1000, seed=1)
    reference["response_tokens"] = None  # as a classifier's captured traffic reads
    calibration = calibrate_drift(reference, build_vocabulary(["a"]), config)
    assert list(calibration.thresholds) == list(JS_COLUMNS)
    assert calibration.test_level == pytest.approx(config.false_alarm_rate / 8)


def test_label_free_estimate_is_anchored_to_the_held_out_accuracy(config: DriftConfig) -> None:
    """Mean confidence 0.80 on held-out rows that were right 70 % of the time: every estimate moves down 0.10."""
    vocabulary = build_vocabulary(traffic(1000, seed=99)["text"])
    reference = traffic(1000, seed=1)
    reference["confidence"] = 0.8
    reference["label"] = np.where(np.arange(1000) < 700, reference["predicted_label"], "other")
    calibration = calibrate_drift(reference, vocabulary, config)
    assert calibration.accuracy_offset == pytest.approx(-0.1)
    window = traffic(300, seed=2)
    window["confidence"] = 0.6
    result = check_drift(reference, window, vocabulary, config, calibration)
    assert result.estimated_accuracy_reference == pytest.approx(0.7)
    assert result.estimated_accuracy_current == pytest.approx(0.5)
    unlabelled = calibrate_drift(reference.drop(columns=["label"]), vocabulary, config)
    assert unlabelled.accuracy_offset == 0.0
