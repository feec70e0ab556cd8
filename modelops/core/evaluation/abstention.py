"""Abstention: below a confidence threshold the request goes to the owner's fallback (e.g. a human queue).

The owner prices the fallback in `evaluation.yaml` (`abstention: {fallback_label, fallback_cost}`). The threshold
is the one that minimises the owner's expected cost per request on the validation split: every answered request
costs what the cost model says for (true, predicted), every abstained one costs `fallback_cost`. Candidates are 0
(never abstain) and the midpoints between consecutive distinct confidences; ties go to the lower threshold (the
most requests answered). The threshold is recorded with the model version and applied by the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelops.core.evaluation.evaluation_policy import AbstentionPolicy, CostModel
from modelops.core.markdown import markdown_table


def answer_costs(y_true: list[str], predicted: list[str], cost_model: CostModel) -> np.ndarray:
    """The cost of answering each request with its prediction."""
    return np.array([cost_model.cost(t, p) for t, p in zip(y_true, predicted, strict=True)], dtype=float)


def choose_threshold(confidence: np.ndarray, costs: np.ndarray, fallback_cost: float) -> float:
    """The confidence threshold (abstain below it) with the lowest mean cost; 0.0 means never abstain."""
    confidence, costs = np.asarray(confidence, dtype=float), np.asarray(costs, dtype=float)
    if confidence.shape != costs.shape or confidence.ndim != 1 or not len(confidence):
        raise ValueError("confidence and costs must be two 1-D arrays of the same, non-zero length")
    order = np.argsort(confidence, kind="stable")
    sorted_conf, sorted_cost = confidence[order], costs[order]
    distinct = np.flatnonzero(np.diff(sorted_conf) > 0)  # last index of each run of equal confidences
    candidates = np.concatenate([[0.0], (sorted_conf[distinct] + sorted_conf[distinct + 1]) / 2])
    abstained = np.concatenate([[0], distinct + 1])  # requests below each candidate
    answered_cost = np.concatenate([[0.0], np.cumsum(sorted_cost[::-1])])[::-1]  # cost of rows abstained.. onwards
    totals = abstained * fallback_cost + answered_cost[abstained]
    return float(candidates[int(np.argmin(totals))])


@dataclass(frozen=True)
class AbstentionReport:
    """One model at its threshold on one labelled set."""

    threshold: float
    fallback_label: str
    coverage: float  # share of requests answered
    covered_accuracy: float  # accuracy on the answered requests (nan when none is answered)
    cost_per_1000: float  # with abstention
    cost_per_1000_without: float

    def metrics(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}abstention_{k}": float(v) for k, v in
                (("threshold", self.threshold), ("coverage", self.coverage),
                 ("covered_accuracy", self.covered_accuracy), ("cost_per_1000", self.cost_per_1000),
                 ("cost_per_1000_without", self.cost_per_1000_without))}

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def abstention_report(y_true: list[str], predicted: list[str], confidence: np.ndarray, threshold: float,
                      policy: AbstentionPolicy, cost_model: CostModel) -> AbstentionReport:
    """Coverage, accuracy on answered requests and cost per 1000 with and without abstention at `threshold`."""
    costs = answer_costs(y_true, predicted, cost_model)
    answered = np.asarray(confidence, dtype=float) >= threshold
    correct = np.array([t == p for t, p in zip(y_true, predicted, strict=True)])
    with_fallback = np.where(answered, costs, policy.fallback_cost)
    return AbstentionReport(
        threshold=threshold, fallback_label=policy.fallback_label, coverage=float(answered.mean()),
        covered_accuracy=float(correct[answered].mean()) if answered.any() else float("nan"),
        cost_per_1000=float(with_fallback.mean() * 1000), cost_per_1000_without=float(costs.mean() * 1000))


def abstention_markdown(reports: dict[str, AbstentionReport]) -> str:
    """role | threshold | coverage | accuracy answered | cost/1000 with | without."""
    rows = [[role, f"{r.threshold:.3f}", f"{r.coverage:.1%}", f"{r.covered_accuracy:.3f}", f"{r.cost_per_1000:.2f}",
             f"{r.cost_per_1000_without:.2f}"] for role, r in reports.items()]
    return markdown_table(["model", "threshold", "coverage", "accuracy answered", "cost/1000 with fallback",
                           "cost/1000 without"], rows)


THRESHOLD_TAG, FALLBACK_TAG = "abstention_threshold", "abstention_fallback_label"  # model-version tags


@dataclass(frozen=True)
class ServedAbstention:
    """What the server applies: below `threshold` the client gets `fallback_label` (and the model's best guess)."""

    threshold: float
    fallback_label: str

    def tags(self) -> dict[str, str]:
        return {THRESHOLD_TAG: repr(self.threshold), FALLBACK_TAG: self.fallback_label}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ServedAbstention | None:
        """The abstention recorded with a model version; None for a version evaluated without one."""
        if THRESHOLD_TAG not in tags or FALLBACK_TAG not in tags:
            return None
        return cls(float(tags[THRESHOLD_TAG]), tags[FALLBACK_TAG])


def fit_abstention(validation: tuple[list[str], list[str], np.ndarray], test: tuple[list[str], list[str], np.ndarray],
                   policy: AbstentionPolicy, cost_model: CostModel) -> AbstentionReport:
    """Choose the threshold on `validation` (true labels, predictions, confidences) and report it on `test`."""
    costs = answer_costs(validation[0], validation[1], cost_model)
    threshold = choose_threshold(validation[2], costs, policy.fallback_cost)
    return abstention_report(*test, threshold, policy, cost_model)
