"""Calibrated drift thresholds: each drift statistic's null distribution from the champion's own held-out rows.

A stable traffic window is a sample of the same distribution as the champion's held-out rows (validation + test,
scored by the champion, never its training rows). So the distribution of each statistic on stable windows is
measured where it is known, on those rows, at the window sizes the sensor sees, and each threshold is set so that
a stable window raises drift with the policy's probability `false_alarm_rate`:

- **Union bound across tests.** A window is checked by 8 tests (6 Jensen-Shannon columns, the embedding domain
  classifier, the label-free accuracy drop; 9 for a generative model, whose response length is a 7th column); each
  runs at level `false_alarm_rate / tests` (Bonferroni), so the chance that any test fires on a stable window is at
  most `false_alarm_rate`, whatever the correlation between columns.
- **Jensen-Shannon columns** (`text_length`, `word_count`, `oov_rate`, `has_non_ascii`, `predicted_label`,
  `confidence`, and `response_tokens` when the reference has them): `replicates` times per window size, the
  held-out pool is split at random into a reference part and a disjoint window of that size, and the exact
  statistic Evidently computes (`js_distance`) is taken. The
  squared distance (the JS divergence, ~ chi-square / (8 n_eff) for large samples) is fitted by a scaled
  chi-square `a * chi2(nu)` matching the replicates' mean and variance, and the threshold is the fit's
  `1 - level` quantile: a smooth tail instead of the noisy maximum of a few hundred replicates. A yes/no column
  (`has_non_ascii`) is held to a binomial rule instead (`_binary_column_threshold`): replicates cannot show more
  rare rows than the held-out rows hold, so the rare value's rate is taken at its upper confidence bound.
- **Embedding domain classifier** (ROC AUC on a held-out half, Evidently's `ModelDriftMethod`): under no drift the
  classifier's held-out scores of reference and current rows are exchangeable, so the AUC follows the
  Mann-Whitney null, mean 0.5 and variance (n0 + n1 + 1) / (12 n0 n1) for n1 reference and n0 current rows in the
  held-out half; the threshold is its normal `1 - level` quantile for the window's own sizes. Exact by principle,
  no replicates needed.
- **Label-free accuracy drop** (mean confidence of the reference minus that of the window): a difference of means,
  normal with standard deviation `sd(confidence) * sqrt(1/n + 1/H)`; the band is its one-sided `1 - level`
  quantile. The estimate itself is anchored to what the held-out rows measured: temperature scaling leaves mean
  confidence a few points off accuracy, so `accuracy_offset` (held-out accuracy minus held-out mean confidence)
  is added to every window's mean confidence.

Window sizes: `min_window_rows`, doubling, up to half the held-out pool (the reference part is never smaller than
the window) or `max_current_rows`; a pool smaller than two windows draws the window with replacement from the half
that is not the reference part (bootstrap: noisier than fresh traffic, so it errs towards fewer alarms). A window
of n rows uses the thresholds of the largest calibrated size <= n: the statistics' noise falls as n grows, so this
also errs towards fewer alarms. Nothing here is tuned to a data set: the thresholds adapt to the number of classes,
the text lengths and the window size through the rows themselves. What it cannot see: held-out rows and later
stable traffic that differ a little (CLINC150's validation and test splits do, bench/README.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modelops.core.monitoring.drift import TRUE_LABEL_COLUMN, checked_table
from modelops.core.monitoring.drift_config import (
    CONFIDENCE_COLUMN,
    DESCRIPTOR_COLUMNS,
    EMBEDDING_COLUMN,
    LABEL_COLUMN,
    RESPONSE_TOKENS_COLUMN,
)

if TYPE_CHECKING:
    from modelops.core.monitoring.drift_config import DriftConfig

log = logging.getLogger(__name__)

JS_COLUMNS = (*DESCRIPTOR_COLUMNS, LABEL_COLUMN, CONFIDENCE_COLUMN)  # checked in every window
OPTIONAL_JS_COLUMNS = (RESPONSE_TOKENS_COLUMN,)  # checked when the reference has them (a generative model's)
OTHER_TESTS = (EMBEDDING_COLUMN, "estimated_accuracy_drop")
CATEGORICAL_MAX_VALUES = 20  # Evidently compares a numeric column value by value when its reference has <= 20 values


class DriftCalibrationError(ValueError):
    """The held-out rows cannot calibrate the drift check (fewer than the smallest window)."""


# ---------------------------------------------------------------------------------------------- the statistic


def js_distance(reference: np.ndarray, current: np.ndarray, categorical: bool) -> float:
    """Jensen-Shannon distance (natural log) of two samples, exactly as Evidently's "jensenshannon" test bins them.

    Numeric columns whose reference holds more than 20 distinct values are binned into Sturges bins over both
    samples; others (and `categorical` ones) are compared value by value."""
    if not categorical and len(np.unique(reference)) > CATEGORICAL_MAX_VALUES:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        p = np.histogram(reference, edges)[0].astype(np.float64)
        q = np.histogram(current, edges)[0].astype(np.float64)
    else:
        values, codes = np.unique(np.concatenate([reference, current]), return_inverse=True)
        p = np.bincount(codes[: len(reference)], minlength=len(values)).astype(np.float64)
        q = np.bincount(codes[len(reference):], minlength=len(values)).astype(np.float64)
    return _js_from_counts(p, q)


def _js_from_counts(p: np.ndarray, q: np.ndarray) -> float:
    from scipy.special import rel_entr

    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    return float(math.sqrt(max((rel_entr(p, m).sum() + rel_entr(q, m).sum()) / 2, 0.0)))


def _normal_quantile(level: float) -> float:
    """z with P(Z > z) = level for a standard normal Z."""
    from scipy.stats import norm

    return float(norm.isf(level))


def auc_null_threshold(n_reference: int, n_current: int, level: float) -> float:
    """The AUC a same-distribution pair of windows exceeds with probability `level` (Mann-Whitney null of the
    held-out half that Evidently's domain classifier scores: about half of each window's rows)."""
    n1, n0 = max(n_reference // 2, 1), max(n_current // 2, 1)
    return 0.5 + _normal_quantile(level) * math.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1))


# ---------------------------------------------------------------------------------------------- the calibration


@dataclass(frozen=True)
class DriftCalibration:
    """The champion's calibrated drift thresholds, stored beside its reference (`reference.reference_calibration`)."""

    false_alarm_rate: float
    test_level: float  # false_alarm_rate / number of tests
    window_sizes: list[int]
    thresholds: dict[str, list[float]]  # JS column -> threshold per window size (the columns this champion checks)
    null_medians: dict[str, list[float]]  # JS column -> median of its stable-window replicates per window size
    pool_rows: int  # held-out rows the JS replicates were drawn from (the reference after subsampling)
    reference_rows: int  # all held-out rows (the label-free accuracy estimate's reference)
    confidence_std: float
    replicates: int
    policy_fingerprint: str
    seconds: float
    accuracy_offset: float = 0.0  # held-out accuracy minus held-out mean confidence (0 without true labels)

    def size_index(self, n_rows: int) -> int:
        """Index of the largest calibrated window size <= n_rows (the smallest size for smaller windows)."""
        fitting = [i for i, size in enumerate(self.window_sizes) if size <= n_rows]
        return fitting[-1] if fitting else 0

    def column_threshold(self, column: str, n_rows: int) -> float:
        return self.thresholds[column][self.size_index(n_rows)]

    def embedding_threshold(self, n_reference: int, n_current: int) -> float:
        return auc_null_threshold(n_reference, n_current, self.test_level)

    def accuracy_drop_band(self, n_current: int) -> float:
        """Drop of the label-free accuracy estimate that a stable window of n_current rows exceeds with
        probability test_level."""
        spread = self.confidence_std * math.sqrt(1.0 / max(n_current, 1) + 1.0 / max(self.reference_rows, 1))
        return _normal_quantile(self.test_level) * spread

    def markdown(self) -> str:
        """The thresholds per window size as a markdown table (Dagster metadata, MLflow drift report)."""
        header = "| test | " + " | ".join(f"{n} rows" for n in self.window_sizes) + " |"
        lines = [header, "|---|" + "---:|" * len(self.window_sizes)]
        for column in self.thresholds:
            cells = [f"{t:.3f} (stable median {m:.3f})"
                     for t, m in zip(self.thresholds[column], self.null_medians[column], strict=True)]
            lines.append(f"| {column} (JS distance) | " + " | ".join(cells) + " |")
        lines.append("| embedding (domain classifier AUC) | " + " | ".join(
            f"{self.embedding_threshold(self.pool_rows, n):.3f}" for n in self.window_sizes) + " |")
        lines.append("| estimated accuracy drop | " + " | ".join(
            f"{self.accuracy_drop_band(n):.3f}" for n in self.window_sizes) + " |")
        tests = len(self.thresholds) + len(OTHER_TESTS)
        return (f"Calibrated on {self.pool_rows} held-out rows ({self.replicates} stable windows per size) for a "
                f"false-alarm rate of {self.false_alarm_rate:g} per window ({tests} tests at "
                f"{self.test_level:.2g} each). Label-free accuracy estimate = mean confidence "
                f"{self.accuracy_offset:+.3f} (held-out accuracy minus mean confidence).\n\n" + "\n".join(lines))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> DriftCalibration:
        return cls(**json.loads(text))


def policy_fingerprint(config: DriftConfig, reference_rows: int) -> str:
    """What a calibration depends on besides the rows: a changed drift policy calls for a new calibration."""
    keys = (config.false_alarm_rate, config.min_window_rows, config.max_reference_rows, config.max_current_rows,
            config.calibration_replicates, config.seed, reference_rows)
    return hashlib.sha256(repr(keys).encode()).hexdigest()[:16]


def calibration_window_sizes(pool_rows: int, min_window_rows: int, max_current_rows: int) -> list[int]:
    """min_window_rows, doubling, up to half the pool (or max_current_rows), that cap included."""
    if pool_rows < min_window_rows:
        raise DriftCalibrationError(
            f"the champion has {pool_rows} held-out rows, fewer than min_window_rows={min_window_rows}: its drift "
            "check cannot decide on any window. Add labelled data (the curated validation and test splits are the "
            "reference) or lower min_window_rows in the drift policy."
        )
    cap = min(max_current_rows, max(pool_rows // 2, min_window_rows))
    sizes = [min_window_rows]
    while sizes[-1] * 2 <= cap:
        sizes.append(sizes[-1] * 2)
    if sizes[-1] < cap:
        sizes.append(cap)
    return sizes


def calibrate_drift(reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig) -> DriftCalibration:
    """Thresholds for every drift test at the policy's false-alarm rate, from the champion's held-out rows."""
    started = time.perf_counter()
    table = checked_table(reference, vocabulary, config.max_reference_rows, config.seed)
    sizes = calibration_window_sizes(len(table), config.min_window_rows, config.max_current_rows)
    checked = [*JS_COLUMNS, *(column for column in OPTIONAL_JS_COLUMNS if column in table.columns)]
    if table[checked].isna().any().any():
        raise DriftCalibrationError(f"the held-out rows have missing values in {checked}: every row needs them all")
    level = config.false_alarm_rate / (len(checked) + len(OTHER_TESTS))
    rng = np.random.default_rng(config.seed)
    columns = {column: table[column].to_numpy() for column in checked}
    thresholds: dict[str, list[float]] = {column: [] for column in checked}
    medians: dict[str, list[float]] = {column: [] for column in checked}
    for size in sizes:
        null = {column: np.empty(config.calibration_replicates) for column in checked}
        for replicate in range(config.calibration_replicates):
            ref, window = _split(len(table), size, rng)
            for column, values in columns.items():
                null[column][replicate] = js_distance(values[ref], values[window], column == LABEL_COLUMN)
        for column, values in columns.items():
            thresholds[column].append(_threshold(null[column], level, values, size))
            medians[column].append(float(np.median(null[column])))
    confidences = reference[CONFIDENCE_COLUMN].to_numpy(dtype=np.float64)
    offset = 0.0
    if TRUE_LABEL_COLUMN in reference.columns:
        correct = (reference[TRUE_LABEL_COLUMN].astype(str) == reference[LABEL_COLUMN].astype(str)).to_numpy()
        offset = float(correct.mean() - confidences.mean())
    calibration = DriftCalibration(
        false_alarm_rate=config.false_alarm_rate, test_level=level, window_sizes=sizes, thresholds=thresholds,
        null_medians=medians, pool_rows=len(table), reference_rows=len(reference),
        confidence_std=float(confidences.std(ddof=1)) if len(confidences) > 1 else 0.0,
        replicates=config.calibration_replicates, policy_fingerprint=policy_fingerprint(config, len(reference)),
        seconds=round(time.perf_counter() - started, 3), accuracy_offset=offset,
    )
    log.info("drift calibration: %d held-out rows, window sizes %s, %.1fs", len(table), sizes, calibration.seconds)
    return calibration


def _split(pool: int, window: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random reference part and a disjoint window of `window` rows (drawn with replacement only when the rest
    of the pool is smaller than the window; the reference part keeps at least half the pool)."""
    order = rng.permutation(pool)
    reference_size = max(pool - window, pool // 2)
    rest = order[reference_size:]
    chosen = rest[:window] if len(rest) >= window else rng.choice(rest, size=window, replace=True)
    return order[:reference_size], chosen


def _threshold(null: np.ndarray, level: float, pool_values: np.ndarray, window: int) -> float:
    """The column's threshold: the binomial rule for a yes/no (or constant) column, else the 1 - level quantile of
    a scaled chi-square fitted to the replicates' squared distances, as a distance."""
    from scipy.stats import chi2

    if len(np.unique(pool_values)) <= 2:
        return _binary_column_threshold(pool_values, window, level)
    divergence = null**2
    mean, variance = float(divergence.mean()), float(divergence.var(ddof=1))
    scale, dof = variance / (2 * mean), 2 * mean**2 / variance
    return float(math.sqrt(scale * chi2.isf(level, dof)))


def _binary_column_threshold(pool_values: np.ndarray, window: int, level: float) -> float:
    """A yes/no column (e.g. has_non_ascii): its rarer value's rate p is uncertain when the held-out rows hold few
    such rows (replicates of 2 rare rows in 800 never show 3 in a window, real traffic does). So p is taken at its
    Clopper-Pearson upper bound (confidence 1 - level/2), and the threshold lies between the distances of the
    binomial 1 - level/2 quantile count of rare rows in the window and one more: a stable window exceeds it with
    probability at most `level` (union bound). A constant column is the case of 0 rare rows."""
    from scipy.stats import beta, binom

    values, counts = np.unique(pool_values, return_counts=True)
    rare = int(counts.min()) if len(values) == 2 else 0
    pool = len(pool_values)
    upper_rate = float(beta.isf(level / 2, rare + 1, pool - rare))
    allowed = int(binom.isf(level / 2, window, upper_rate))
    pool_counts = np.array([pool - rare, rare], dtype=np.float64)

    def distance(rare_rows: int) -> float:
        return _js_from_counts(pool_counts, np.array([window - rare_rows, rare_rows], dtype=np.float64))

    return (distance(min(allowed, window)) + distance(min(allowed + 1, window))) / 2
