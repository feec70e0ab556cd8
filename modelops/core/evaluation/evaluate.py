"""Evaluate a text classifier: accuracy, macro-F1, per-class table, calibration, business cost.

Labels are strings; probabilities come as an (n, n_labels) array in `label_names` order and the prediction is
the argmax (ties go to the first label). Config for the cost model lives in `config/evaluation.yaml`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modelops.core.atomic import write_atomic
from modelops.core.config_files import ConfigError
from modelops.core.evaluation.evaluation_policy import CostModel
from modelops.core.markdown import markdown_table

if TYPE_CHECKING:
    from modelops.core.evaluation.abstention import AbstentionReport

log = logging.getLogger(__name__)

ECE_BINS = 15
PROB_TOLERANCE = 1e-6
ROW_SUM_TOLERANCE = 1e-2
MISSING = "—"
COMPARED_METRICS = (  # (row name, EvaluationReport attribute, decimals)
    ("accuracy", "accuracy", 3),
    ("macro-F1", "macro_f1", 3),
    ("ECE", "ece", 3),
    ("expected cost / 1000", "expected_cost_per_1000", 2),
    ("n", "n", 0),
)


class EvaluationInputError(ValueError):
    """The labels or probabilities handed to `evaluate` cannot be evaluated."""


# ---------------------------------------------------------------------------------------------- cost model


@dataclass(frozen=True)
class CostCoverage:
    """How the cost model meets the data's labels: labels it does not price (they cost default_error_cost) and
    labels it names that the data does not have (their costs never apply)."""

    unpriced: list[str]
    unknown: list[str]

    def markdown(self) -> str:
        if not self.unpriced and not self.unknown:
            return "The cost model prices every label of the data and names no other."
        lines = []
        if self.unpriced:
            lines.append(f"- {len(self.unpriced)} label(s) of the data have no cost of their own (each error costs "
                         f"default_error_cost): {', '.join(self.unpriced)}")
        if self.unknown:
            lines.append(f"- {len(self.unknown)} label(s) in the cost model are not in the data (their costs never "
                         f"apply): {', '.join(self.unknown)}")
        return "\n".join(lines)


def cost_coverage(model: CostModel, data_labels: Sequence[str], path: Path) -> CostCoverage:
    """Compare the cost model with the data's labels; a cost model that prices none of them is refused unless the
    owner set `allow_default_costs: true` (every error would silently cost the same)."""
    data = set(data_labels)
    coverage = CostCoverage(unpriced=sorted(data - model.labels()), unknown=sorted(model.labels() - data))
    if data and not data & model.labels() and not model.allow_default_costs:
        raise ConfigError(
            f"names none of the data's {len(data)} labels ({', '.join(sorted(data)[:8])}"
            f"{', ...' if len(data) > 8 else ''}), so every error would cost default_error_cost. Price your labels "
            "(`modelops init` writes a policy listing them) or set cost_model.allow_default_costs: true",
            path, "cost_model")
    return coverage


# ------------------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True, eq=False)
class EvaluationReport:
    """Metrics of one model on one labelled evaluation set."""

    label_names: list[str]
    n: int
    accuracy: float
    macro_f1: float
    per_class: pd.DataFrame
    ece: float
    confusion: np.ndarray
    expected_cost_per_1000: float
    abstention: AbstentionReport | None = None  # the model at its own threshold, when the owner prices a fallback

    @property
    def served_cost_per_1000(self) -> float:
        """Expected cost per 1000 requests as served: with the fallback below the threshold, when there is one."""
        return self.abstention.cost_per_1000 if self.abstention is not None else self.expected_cost_per_1000

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat float metrics for MLflow/Dagster; `prefix` is prepended as is (e.g. "test_")."""
        values: dict[str, float] = {
            "accuracy": float(self.accuracy),
            "macro_f1": float(self.macro_f1),
            "ece": float(self.ece),
            "expected_cost_per_1000": float(self.expected_cost_per_1000),
            "n": float(self.n),
        }
        for label, f1 in self.per_class["f1"].items():
            values[f"f1_{metric_key(str(label))}"] = float(f1)
        if self.abstention is not None:
            values.update(self.abstention.metrics())
        return {f"{prefix}{key}": value for key, value in values.items()}

    def f1_by_label(self) -> dict[str, float]:
        """Per-class F1 keyed by label."""
        return {str(label): float(f1) for label, f1 in self.per_class["f1"].items()}

    def support_by_label(self) -> dict[str, int]:
        """Number of evaluation examples per true label."""
        return {str(label): int(s) for label, s in self.per_class["support"].items()}

    def per_class_markdown(self) -> str:
        """Markdown table: label | precision | recall | F1 | support."""
        rows = [
            [md_escape(str(label)), *(f"{value:.3f}" for value in (row.precision, row.recall, row.f1)),
             str(int(row.support))]
            for label, row in self.per_class.iterrows()
        ]
        return markdown_table(["label", "precision", "recall", "F1", "support"], rows)


def evaluate(
    y_true: Sequence[str], probs: np.ndarray, label_names: Sequence[str], cost_model: CostModel
) -> EvaluationReport:
    """Evaluate argmax predictions of `probs` against `y_true`; see EvaluationReport for what is measured."""
    labels = _checked_label_names(label_names)
    true_idx = _label_indices(y_true, labels)
    probabilities = _checked_probs(probs, n=len(true_idx), k=len(labels))
    pred_idx = probabilities.argmax(axis=1)
    confusion = confusion_counts(true_idx, pred_idx, len(labels))
    per_class = per_class_table(confusion, labels)
    _warn_unused_cost_labels(cost_model, labels)
    return EvaluationReport(
        label_names=labels,
        n=len(true_idx),
        accuracy=float(np.trace(confusion) / confusion.sum()),
        macro_f1=macro_f1(confusion, per_class),
        per_class=per_class,
        ece=expected_calibration_error(probabilities.max(axis=1), pred_idx == true_idx),
        confusion=confusion,
        expected_cost_per_1000=float((confusion * cost_model.cost_matrix(labels)).sum() / confusion.sum() * 1000),
    )


def _checked_label_names(label_names: Sequence[str]) -> list[str]:
    """label_names as a list of unique, non-empty strings."""
    if isinstance(label_names, str):
        raise EvaluationInputError("label_names must be a sequence of labels, not one string")
    labels = list(label_names)
    if not labels:
        raise EvaluationInputError("label_names is empty; pass the model's labels in probability-column order")
    bad = [label for label in labels if not isinstance(label, str) or not label]
    if bad:
        raise EvaluationInputError(f"label_names must be non-empty strings; got {bad!r}")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise EvaluationInputError(f"label_names has duplicates {duplicates}")
    return labels


def _label_indices(y_true: Sequence[str], labels: list[str]) -> np.ndarray:
    """Index of each true label in `labels`; raises on empty input or unknown labels."""
    if isinstance(y_true, str):
        raise EvaluationInputError("y_true must be a sequence of labels, not one string")
    values = list(y_true)
    if not values:
        raise EvaluationInputError("empty input: y_true has no examples; evaluate needs at least one")
    position = {label: i for i, label in enumerate(labels)}
    unknown = sorted({repr(v) for v in values if not isinstance(v, str) or v not in position})
    if unknown:
        raise EvaluationInputError(
            f"y_true has labels not in label_names: {', '.join(unknown[:10])}"
            f"{' ...' if len(unknown) > 10 else ''}; label_names are {labels}"
        )
    return np.array([position[v] for v in values], dtype=np.int64)


def _checked_probs(probs: np.ndarray, n: int, k: int) -> np.ndarray:
    """probs as an (n, k) float array of probabilities whose rows sum to 1."""
    try:
        array = np.asarray(probs, dtype=float)
    except (TypeError, ValueError) as error:
        raise EvaluationInputError(f"probs must be a numeric array: {error}") from None
    if array.shape != (n, k):
        raise EvaluationInputError(
            f"probs has shape {array.shape}, expected ({n}, {k}) = (len(y_true), len(label_names))"
        )
    if not np.isfinite(array).all():
        raise EvaluationInputError("probs contains NaN or infinite values")
    if array.min() < -PROB_TOLERANCE or array.max() > 1 + PROB_TOLERANCE:
        raise EvaluationInputError(
            f"probs must lie in [0, 1], found values in [{array.min():.4g}, {array.max():.4g}]; apply softmax to logits"
        )
    sums = array.sum(axis=1)
    worst = int(np.abs(sums - 1).argmax())
    if abs(sums[worst] - 1) > ROW_SUM_TOLERANCE:
        raise EvaluationInputError(f"probs row {worst} sums to {sums[worst]:.4g}, expected 1; apply softmax to logits")
    return np.clip(array, 0.0, 1.0)


def _warn_unused_cost_labels(cost_model: CostModel, labels: list[str]) -> None:
    """Log cost-model labels the task does not have (a typo silently falls back to the default cost)."""
    unknown = sorted(cost_model.labels() - set(labels))
    if unknown:
        log.warning("cost model names labels %s not in label_names %s; their costs never apply", unknown, labels)


def confusion_counts(true_idx: np.ndarray, pred_idx: np.ndarray, k: int) -> np.ndarray:
    """(k, k) int counts, rows true, columns predicted."""
    return np.bincount(true_idx * k + pred_idx, minlength=k * k).reshape(k, k)


def per_class_table(confusion: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """precision, recall, f1, support per label from a confusion matrix (0.0 where undefined)."""
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    return pd.DataFrame(
        {
            "precision": _safe_ratio(tp, predicted),
            "recall": _safe_ratio(tp, support),
            "f1": _safe_ratio(2 * tp, support + predicted),
            "support": support.astype(np.int64),
        },
        index=pd.Index(labels, name="label"),
    )


def macro_f1(confusion: np.ndarray, per_class: pd.DataFrame) -> float:
    """Mean F1 over labels that occur in y_true or in the predictions (scikit-learn's default label set)."""
    active = (confusion.sum(axis=1) > 0) | (confusion.sum(axis=0) > 0)
    return float(per_class["f1"].to_numpy()[active].mean())


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0.0 where the denominator is 0."""
    denominator = denominator.astype(float)
    return np.divide(numerator, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE over `n_bins` equal-width bins (lo, hi] of the max probability; the first bin includes 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    counts = np.bincount(bins, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    correct_sum = np.bincount(bins, weights=correct.astype(float), minlength=n_bins)
    return float(np.abs(correct_sum - conf_sum).sum() / counts.sum())


def metric_key(label: str) -> str:
    """A label made safe for MLflow metric names and Dagster metadata keys."""
    return re.sub(r"[^0-9A-Za-z_.-]", "_", label)


# ------------------------------------------------------------------------------------------- presentation


def confusion_matrix_png(report: EvaluationReport, path: Path, title: str) -> Path:
    """Write the confusion matrix (counts, coloured by share of the true class) as a PNG; returns `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels, counts = report.label_names, report.confusion
    k = len(labels)
    side = max(5.0, 0.55 * k + 3.0)
    figure = Figure(figsize=(side + 1.5, side), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    share = _row_shares(counts)
    image = axes.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of true class", shrink=0.8)
    axes.set_xticks(range(k), labels=labels, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(k), labels=labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    font = 9 if k <= 12 else 7
    for i in range(k):
        for j in range(k):
            colour = "white" if share[i, j] > 0.5 else "black"
            axes.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize=font)
    return write_atomic(Path(path), lambda tmp: figure.savefig(tmp, format="png"))


def _row_shares(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (0 for empty rows)."""
    totals = counts.sum(axis=1, keepdims=True).astype(float)
    return np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)


def comparison_markdown(challenger: EvaluationReport, champion: EvaluationReport | None) -> str:
    """Markdown table metric | champion | challenger | delta (delta = challenger - champion)."""
    rows = [
        _comparison_row(name, getattr(challenger, attr), getattr(champion, attr, None), digits)
        for name, attr, digits in COMPARED_METRICS
    ]
    challenger_f1 = challenger.f1_by_label()
    champion_f1 = champion.f1_by_label() if champion is not None else {}
    labels = list(challenger_f1) + [label for label in champion_f1 if label not in challenger_f1]
    for label in labels:
        name = f"F1 {md_escape(label)}"
        rows.append(_comparison_row(name, challenger_f1.get(label), champion_f1.get(label), 3))
    return markdown_table(["metric", "champion", "challenger", "delta"], rows)


def _comparison_row(name: str, challenger: float | None, champion: float | None, digits: int) -> list[str]:
    """One comparison row; missing values are shown as a dash."""

    def shown(value: float | None) -> str:
        return MISSING if value is None else f"{value:.{digits}f}"

    delta = MISSING if challenger is None or champion is None else f"{challenger - champion:+.{digits}f}"
    return [name, shown(champion), shown(challenger), delta]


def md_escape(text: str) -> str:
    """Escape characters that would break a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
