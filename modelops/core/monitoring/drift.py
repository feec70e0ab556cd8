"""Drift of a production traffic window against a reference window, measured with Evidently.

Checked columns (one drift score each):
- text descriptors `text_length`, `word_count`, `oov_rate`, `has_non_ascii` (computed here, see
  `text_descriptors`), the model outputs `predicted_label` and `confidence`: Evidently `ValueDrift` with the
  Jensen-Shannon distance (`method="jensenshannon"`, natural log, so 0 = same distribution and sqrt(ln 2) ~ 0.83
  = disjoint; numeric columns are binned into Sturges bins over both windows, columns with <= 20 distinct
  reference values are compared value by value). A generative model's windows add `response_tokens` (each
  response's length in tokens) in the same way, when its reference has them.
- `embedding`: Evidently's domain-classifier embedding drift (`ModelDriftMethod`: a logistic-regression SGD
  classifier learns to tell reference from current rows; the score is its ROC AUC on a held-out half, 0.5 =
  indistinguishable). Evidently's own `EmbeddingsDrift` metric computes the same score but always fits a t-SNE for
  its plot (~30 s on 5k rows here), so the method runs inside a small custom Evidently metric instead
  (`drift_report`), which keeps it in the HTML report.
- the label-free accuracy estimate (`estimate_accuracy`, the mean calibrated confidence, anchored to the
  champion's measured accuracy on its held-out rows: `DriftCalibration.accuracy_offset`): its drop from the
  reference to the window.

Every threshold comes from the champion's calibration (`modelops.core.monitoring.drift_calibration`): the statistic's
distribution on stable windows of the window's size drawn from the champion's held-out rows, so that a stable
window raises drift with probability at most `false_alarm_rate`. `fixed_thresholds` in the policy overrides a
column's threshold explicitly. Both windows are subsampled deterministically (`seed`) before the statistics, so
cost does not grow with the window. Severity: "severe" when the share of drifted columns >= `severe_share` or the
estimated accuracy drop is beyond its noise band and at least `accuracy_drop_threshold`; "moderate" when the
share >= `moderate_share` or the accuracy drop is beyond its noise band.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modelops.core.data.curate import clean_text
from modelops.core.monitoring.drift_config import (
    CONFIDENCE_COLUMN,
    EMBEDDING_COLUMN,
    LABEL_COLUMN,
    RESPONSE_TOKENS_COLUMN,
    DriftConfig,
)
from modelops.core.monitoring.drift_report import run_report

if TYPE_CHECKING:
    from modelops.core.monitoring.drift_calibration import DriftCalibration
    from modelops.core.monitoring.new_topics import TopicCandidate

log = logging.getLogger(__name__)

TOKEN_PATTERN = r"\w+"
TRUE_LABEL_COLUMN = "label"  # the reference's true labels, when known
REQUIRED_COLUMNS = ("text", LABEL_COLUMN, CONFIDENCE_COLUMN)

_TOKEN_RE = re.compile(TOKEN_PATTERN)


class DriftInputError(ValueError):
    """A traffic or reference frame cannot be checked for drift (missing columns, invalid values)."""


# ---------------------------------------------------------------------------------------------- text descriptors


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens (Unicode `\\w+` runs); the tokenisation behind the vocabulary and `oov_rate`."""
    return _TOKEN_RE.findall(text.lower())


def build_vocabulary(texts: Iterable[str], min_count: int = 1) -> frozenset[str]:
    """Tokens that occur at least `min_count` times in `texts` (same tokenisation as `oov_rate`)."""
    counts = Counter(token for text in texts for token in tokenize(text))
    return frozenset(token for token, count in counts.items() if count >= min_count)


def text_descriptors(texts: Sequence[str], vocabulary: frozenset[str]) -> pd.DataFrame:
    """Per-text `text_length` (chars), `word_count`, `oov_rate` (share of tokens not in `vocabulary`, 0 for no
    tokens) and `has_non_ascii` (1 when the text holds any non-ASCII character); vectorised with pandas.

    `has_non_ascii` is a yes/no flag rather than a share: a share takes a new value in almost every text, so the
    value-by-value comparison of a sparse column scored ~0.15 on same-distribution windows."""
    series = pd.Series(list(texts), dtype=object).fillna("").astype(str).reset_index(drop=True)
    tokens = series.str.lower().str.findall(TOKEN_PATTERN)
    word_count = tokens.str.len().astype(np.int64)
    flat = tokens.explode().dropna()
    oov_count = (~flat.isin(vocabulary)).groupby(level=0).sum().reindex(series.index, fill_value=0)
    length = series.str.len().astype(np.int64)
    return pd.DataFrame({
        "text_length": length,
        "word_count": word_count,
        "oov_rate": oov_count / word_count.clip(lower=1),
        "has_non_ascii": series.str.contains(r"[^\x00-\x7f]").astype(np.int64),
    })


# ---------------------------------------------------------------------------------------------- performance estimate


def estimate_accuracy(confidences: np.ndarray) -> float:
    """Label-free accuracy estimate: the mean calibrated max-softmax confidence (CBPE-style).

    For a calibrated classifier P(correct | confidence = c) = c, so the expected accuracy of a window is its
    mean confidence. It is only as good as the calibration, and overconfident models keep high confidence on
    unfamiliar inputs, so read it next to the drift scores. Returns NaN for an empty window.
    """
    values = np.asarray(confidences, dtype=np.float64).ravel()
    if values.size == 0:
        return float("nan")
    if np.isnan(values).any() or values.min() < 0.0 or values.max() > 1.0:
        raise DriftInputError("confidences must be probabilities in [0, 1] without NaN; check the traffic logger")
    return float(values.mean())


# ---------------------------------------------------------------------------------------------- result


@dataclass(frozen=True)
class DriftResult:
    """Outcome of one drift check (scores per column, severity, estimated accuracy, Evidently HTML report)."""

    n_reference: int
    n_current: int
    skipped_reason: str | None
    drift_detected: bool
    severity: str
    share_drifted: float
    column_scores: dict[str, float]
    drifted_columns: list[str]
    estimated_accuracy_reference: float
    estimated_accuracy_current: float
    retrain_recommended: bool
    html: str
    seconds: float
    thresholds: dict[str, float] = field(default_factory=dict)  # the threshold each column's score was held to
    accuracy_drop_band: float = float("nan")  # estimated-accuracy drop that a stable window exceeds rarely
    accuracy_drop_significant: bool = False  # the estimated accuracy fell by more than its noise band
    new_topics: list[TopicCandidate] = field(default_factory=list)  # candidate new intents (monitoring.new_topics)
    notes: list[str] = field(default_factory=list)
    output_shares: list[tuple[str, float, float]] = field(default_factory=list)  # see `output_shares`

    def to_metadata(self) -> dict[str, float | int | str | bool]:
        """Flat snake_case values for Dagster metadata / MLflow (numbers are metrics, strings are tags)."""
        metadata: dict[str, float | int | str | bool] = {
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "skipped": self.skipped_reason is not None,
            "skipped_reason": self.skipped_reason or "",
            "drift_detected": self.drift_detected,
            "severity": self.severity,
            "share_drifted": self.share_drifted,
            "n_drifted_columns": len(self.drifted_columns),
            "drifted_columns": ",".join(self.drifted_columns),
            "estimated_accuracy_reference": self.estimated_accuracy_reference,
            "estimated_accuracy_current": self.estimated_accuracy_current,
            "estimated_accuracy_drop": self.estimated_accuracy_reference - self.estimated_accuracy_current,
            "estimated_accuracy_drop_band": self.accuracy_drop_band,
            "estimated_accuracy_drop_significant": self.accuracy_drop_significant,
            "retrain_recommended": self.retrain_recommended,
            "new_topic_candidates": len(self.new_topics),
            "new_topic_share": sum(topic.share for topic in self.new_topics),
            "seconds": self.seconds,
            "notes": "; ".join(self.notes),
        }
        metadata.update({f"drift_score_{column}": score for column, score in self.column_scores.items()})
        metadata.update({f"drift_threshold_{column}": value for column, value in self.thresholds.items()})
        return metadata

    def scores_markdown(self) -> str:
        """Each test's score against its threshold, as a markdown table."""
        lines = ["| test | score | threshold | drifted |", "|---|---:|---:|---|"]
        for column, score in self.column_scores.items():
            drifted = "yes" if column in self.drifted_columns else "no"
            lines.append(f"| {column} | {score:.4f} | {self.thresholds.get(column, float('nan')):.4f} | {drifted} |")
        drop = self.estimated_accuracy_reference - self.estimated_accuracy_current
        lines.append(f"| estimated accuracy drop | {drop:.4f} | {self.accuracy_drop_band:.4f} | "
                     f"{'yes' if self.accuracy_drop_significant else 'no'} |")
        return "\n".join(lines)

    def output_shares_markdown(self) -> str:
        """The outputs whose share moved most, as a markdown table."""
        lines = ["| output | reference share | window share |", "|---|---:|---:|"]
        lines += [f"| {label} | {before:.1%} | {after:.1%} |" for label, before, after in self.output_shares]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- drift check


def check_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    vocabulary: frozenset[str],
    config: DriftConfig,
    calibration: DriftCalibration,
) -> DriftResult:
    """Compare a traffic window with the champion's reference under its calibrated thresholds (module docstring),
    and look for candidate new intents among its unusual rows: unsure, or far from the reference
    (`modelops.core.monitoring.new_topics`)."""
    from modelops.core.monitoring.new_topics import discover_new_topics

    started = time.perf_counter()
    _check_columns(reference, "reference")
    _check_columns(current, "current")
    accuracy_reference = estimate_accuracy(reference[CONFIDENCE_COLUMN].to_numpy()) + calibration.accuracy_offset
    accuracy_current = float(np.clip(estimate_accuracy(current[CONFIDENCE_COLUMN].to_numpy())
                                     + calibration.accuracy_offset, 0.0, 1.0))
    skipped_reason = _skip_reason(len(reference), len(current), config.min_window_rows)
    if skipped_reason is not None:
        log.info("drift check skipped: %s", skipped_reason)
        return _skipped_result(reference, current, skipped_reason, accuracy_reference, accuracy_current, started)
    notes: list[str] = []
    reference_table = checked_table(reference, vocabulary, config.max_reference_rows, config.seed)
    current_table = checked_table(current, vocabulary, config.max_current_rows, config.seed + 1)
    embedding_columns = _shared_embedding_columns(reference_table, current_table, config.min_window_rows, notes)
    checked = list(calibration.thresholds)  # the value columns the champion's calibration covers
    for side, table in (("reference", reference_table), ("current", current_table)):
        if missing := [column for column in checked if column not in table.columns]:
            raise DriftInputError(f"the {side} window lacks {missing}, which the champion's drift calibration checks")
    thresholds = _thresholds(calibration, config, len(reference_table), len(current_table))
    scores, html = run_report(reference_table, current_table, checked, embedding_columns, thresholds)
    thresholds = {column: thresholds[column] for column in scores}
    drifted = [column for column, score in scores.items() if score >= thresholds[column]]
    share = len(drifted) / len(scores)
    accuracy_drop = accuracy_reference - accuracy_current
    band = calibration.accuracy_drop_band(len(current))
    significant = accuracy_drop > band
    accuracy_problem = significant and accuracy_drop >= config.accuracy_drop_threshold
    severity = _severity(share, accuracy_problem, significant, config)
    drift_detected = severity != "none"
    retrain = drift_detected and (not config.require_accuracy_drop or accuracy_problem)
    new_topics = discover_new_topics(subsample(reference, config.max_reference_rows, config.seed),
                                     subsample(current, config.max_current_rows, config.seed + 1), config.seed)
    result = DriftResult(
        n_reference=len(reference),
        n_current=len(current),
        skipped_reason=None,
        drift_detected=drift_detected,
        severity=severity,
        share_drifted=share,
        column_scores=scores,
        drifted_columns=drifted,
        estimated_accuracy_reference=accuracy_reference,
        estimated_accuracy_current=accuracy_current,
        retrain_recommended=retrain,
        html=html,
        seconds=time.perf_counter() - started,
        thresholds=thresholds,
        accuracy_drop_band=band,
        accuracy_drop_significant=significant,
        new_topics=new_topics,
        notes=notes,
        output_shares=output_shares(reference, current),
    )
    log.info("drift check: severity=%s drifted=%s accuracy drop %.3f (band %.3f) retrain=%s (%.2fs)", severity,
             drifted, accuracy_drop, band, retrain, result.seconds)
    return result


def output_shares(reference: pd.DataFrame, current: pd.DataFrame, top: int = 10) -> list[tuple[str, float, float]]:
    """The `top` predicted labels whose share moved most from the reference to the window, largest move first, as
    (label, reference share, window share): which intents a classifier's traffic moved to, or how often a generative
    model's responses were unusable (`unusable`, `cut_off`) before and now."""
    shares = pd.concat([reference[LABEL_COLUMN].astype(str).value_counts(normalize=True),
                        current[LABEL_COLUMN].astype(str).value_counts(normalize=True)],
                       axis=1, keys=["reference", "window"]).fillna(0.0).sort_index()
    moved = (shares["window"] - shares["reference"]).abs().sort_values(ascending=False, kind="stable")
    return [(str(label), float(shares.at[label, "reference"]), float(shares.at[label, "window"]))
            for label in moved.index[:top]]


def _check_columns(frame: pd.DataFrame, name: str) -> None:
    """Raise DriftInputError when `frame` lacks a column the check needs."""
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise DriftInputError(f"{name} window lacks columns {missing}; expected at least {list(REQUIRED_COLUMNS)}")


def _skip_reason(n_reference: int, n_current: int, min_rows: int) -> str | None:
    """Why a window pair is too small to decide on, or None."""
    if n_current < min_rows:
        return f"current window has {n_current} rows, fewer than min_window_rows={min_rows}"
    if n_reference < min_rows:
        return f"reference window has {n_reference} rows, fewer than min_window_rows={min_rows}"
    return None


def _skipped_result(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    reason: str,
    accuracy_reference: float,
    accuracy_current: float,
    started: float,
) -> DriftResult:
    """The no-decision result for a window that is too small."""
    return DriftResult(
        n_reference=len(reference),
        n_current=len(current),
        skipped_reason=reason,
        drift_detected=False,
        severity="none",
        share_drifted=0.0,
        column_scores={},
        drifted_columns=[],
        estimated_accuracy_reference=accuracy_reference,
        estimated_accuracy_current=accuracy_current,
        retrain_recommended=False,
        html="",
        seconds=time.perf_counter() - started,
    )


def subsample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most `max_rows` rows of `frame`, chosen deterministically from `seed`, in their original order."""
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    positions = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[positions].reset_index(drop=True)


def checked_table(frame: pd.DataFrame, vocabulary: frozenset[str], max_rows: int, seed: int) -> pd.DataFrame:
    """The subsampled window as the checked columns: descriptors, outputs (`response_tokens` too when the window has
    them) and `embedding_<i>` columns."""
    sample = subsample(frame, max_rows, seed)
    # Describe texts as training saw them (normalised, PII as <EMAIL> etc.), so raw traffic and curated references
    # are comparable.
    table = text_descriptors([clean_text(t) for t in sample["text"]], vocabulary)
    table[LABEL_COLUMN] = sample[LABEL_COLUMN].astype(str).to_numpy()
    table[CONFIDENCE_COLUMN] = sample[CONFIDENCE_COLUMN].astype(np.float64).to_numpy()
    if RESPONSE_TOKENS_COLUMN in sample.columns and sample[RESPONSE_TOKENS_COLUMN].notna().any():
        table[RESPONSE_TOKENS_COLUMN] = sample[RESPONSE_TOKENS_COLUMN].astype(np.float64).to_numpy()
    matrix = _embedding_matrix(sample)
    if matrix is not None:
        names = [f"{EMBEDDING_COLUMN}_{i}" for i in range(matrix.shape[1])]
        table = pd.concat([table, pd.DataFrame(matrix, columns=names)], axis=1)
    return table


def _embedding_matrix(frame: pd.DataFrame) -> np.ndarray | None:
    """Rows x dims float matrix of the `embedding` column (NaN rows where missing), or None without any."""
    if EMBEDDING_COLUMN not in frame.columns:
        return None
    vectors = [None if v is None or (np.ndim(v) == 0) else np.asarray(v, dtype=np.float64)
               for v in frame[EMBEDDING_COLUMN]]
    dims = {v.shape for v in vectors if v is not None}
    if not dims:
        return None
    if len(dims) > 1 or len(next(iter(dims))) != 1:
        raise DriftInputError(f"embedding vectors must share one 1-D shape, got shapes {sorted(dims)}")
    (dim,) = next(iter(dims))
    matrix = np.full((len(vectors), dim), np.nan)
    for row, vector in enumerate(vectors):
        if vector is not None:
            matrix[row] = vector
    return matrix


def _shared_embedding_columns(
    reference: pd.DataFrame, current: pd.DataFrame, min_rows: int, notes: list[str]
) -> list[str]:
    """Embedding columns present in both tables with >= min_rows complete rows; else notes why none are."""
    prefix = f"{EMBEDDING_COLUMN}_"
    reference_columns = [c for c in reference.columns if c.startswith(prefix)]
    current_columns = [c for c in current.columns if c.startswith(prefix)]
    if not reference_columns or not current_columns:
        side = "reference" if not reference_columns else "current"
        notes.append(f"embedding drift skipped: the {side} window has no embeddings")
        return []
    if len(reference_columns) != len(current_columns):
        raise DriftInputError(
            f"embedding dimension differs: reference {len(reference_columns)}, current {len(current_columns)}; "
            "the reference was built with another encoder, rebuild it with the serving model"
        )
    for side, table in (("reference", reference), ("current", current)):
        complete = int(table[reference_columns].notna().all(axis=1).sum())
        if complete < min_rows:
            notes.append(f"embedding drift skipped: only {complete} {side} rows have embeddings (< {min_rows})")
            return []
    return reference_columns


def _thresholds(calibration: DriftCalibration, config: DriftConfig, n_reference: int,
                n_current: int) -> dict[str, float]:
    """Each checked column's threshold for these window sizes: the policy's fixed override, else calibrated."""
    calibrated = {column: calibration.column_threshold(column, n_current) for column in calibration.thresholds}
    calibrated[EMBEDDING_COLUMN] = calibration.embedding_threshold(n_reference, n_current)
    return {**calibrated, **config.fixed_thresholds}


def _severity(share: float, accuracy_problem: bool, accuracy_drop_significant: bool, config: DriftConfig) -> str:
    """'severe', 'moderate' or 'none' from the share of drifted columns and the estimated accuracy drop."""
    if share >= config.severe_share or accuracy_problem:
        return "severe"
    if share >= config.moderate_share or accuracy_drop_significant:
        return "moderate"
    return "none"
