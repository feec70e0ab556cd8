"""Score generated responses against references under the owner's generation policy: exact match after
normalisation, JSON validity, per-field accuracy, business cost per 1000, and the decision field as a classifier.
A JSON response matches exactly when every field of its reference has the reference's value (string values compared
after normalisation; fields the reference does not have are ignored).

The gate (`generation_gate.decide_generation`) applies the classifier gate's rules to the decision field, plus the
generation floors.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelops.core.evaluation.evaluate import (
    EvaluationInputError,
    EvaluationReport,
    evaluate,
    md_escape,
    metric_key,
)
from modelops.core.evaluation.evaluation_policy import CostModel, GenerationPolicy
from modelops.core.markdown import markdown_table

UNUSABLE = "(no valid value)"  # the decision-field "prediction" of an invalid response or an unknown value


@dataclass(frozen=True, eq=False)
class GenerationReport:
    """Metrics of one model's responses on one evaluation set, and each row's outcome (`rows`: prompt, reference,
    response, exact, valid, cost)."""

    n: int
    exact_match: float
    valid_output: float
    field_accuracy: dict[str, float]
    cost_per_1000: float
    decision: EvaluationReport | None
    rows: pd.DataFrame
    evaluation_set: str  # sha256 of the prompts and references: reports compare only on the same set

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat float metrics for MLflow/Dagster; the decision field's classifier metrics start with `decision_`."""
        values = {"exact_match": self.exact_match, "valid_output": self.valid_output,
                  "cost_per_1000": self.cost_per_1000, "n": float(self.n),
                  **{f"field_accuracy_{metric_key(f)}": a for f, a in self.field_accuracy.items()}}
        if self.decision is not None:
            values.update(self.decision.metrics("decision_"))
        return {f"{prefix}{key}": float(value) for key, value in values.items()}


def normalise_answer(text: str) -> str:
    """Unicode NFKC, case-folded, whitespace collapsed: what exact match compares."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def parse_object(text: str) -> dict[str, Any] | None:
    """The response as a JSON object, or None when it is not exactly one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _normalised(value: Any) -> str:
    """A JSON value as exact match compares it: strings normalised, anything else as canonical JSON."""
    return normalise_answer(value) if isinstance(value, str) else json.dumps(value, sort_keys=True)


def evaluate_generations(prompts: Sequence[str], references: Sequence[str], responses: Sequence[str],
                         policy: GenerationPolicy, cost_model: CostModel) -> GenerationReport:
    """Score `responses` against `references` (same order as `prompts`) under `policy`."""
    if not len(prompts) == len(references) == len(responses):
        raise EvaluationInputError(f"{len(prompts)} prompts, {len(references)} references and {len(responses)} "
                                   "responses: each prompt needs one reference and one response")
    if not prompts:
        raise EvaluationInputError("empty input: no prompts to evaluate")
    digest = hashlib.sha256(json.dumps([list(prompts), list(references)]).encode()).hexdigest()
    if policy.output == "text":
        exact = np.array([normalise_answer(r) == normalise_answer(o) for r, o in zip(references, responses)])
        costs = np.where(exact, cost_model.correct_cost, cost_model.default_error_cost)
        return _report(prompts, references, responses, exact, np.ones(len(exact), bool), costs, {}, None, digest)
    truths = [_reference_object(r, i, policy) for i, r in enumerate(references)]
    outputs = [parse_object(r) for r in responses]
    valid = np.array([o is not None and set(t) <= set(o) for t, o in zip(truths, outputs)])
    matched = [bool(ok) and all(_normalised(t[k]) == _normalised(o[k]) for k in t)
               for t, o, ok in zip(truths, outputs, valid)]
    fields = sorted({key for t in truths for key in t})
    wrong = {f: np.array([f in t and not (ok and _normalised(t[f]) == _normalised(o[f]))
                          for t, o, ok in zip(truths, outputs, valid)]) for f in fields}
    accuracy = {f: float(1.0 - wrong[f].sum() / sum(f in t for t in truths)) for f in fields}
    costs = np.array([sum(price for f, price in policy.field_costs.items() if f in wrong and wrong[f][i])
                      for i in range(len(truths))], dtype=float)
    decision = None
    if policy.decision_field:
        y_true, predicted, labels = _decision_values(truths, outputs, valid, policy.decision_field)
        decision = evaluate(y_true, np.eye(len(labels))[[labels.index(p) for p in predicted]], labels, cost_model)
        costs += [cost_model.cost(t, p) for t, p in zip(y_true, predicted)]
    costs[~valid] = policy.invalid_output_cost
    return _report(prompts, references, responses, np.array(matched), valid, costs, accuracy, decision, digest)


def _reference_object(reference: str, row: int, policy: GenerationPolicy) -> dict[str, Any]:
    value = parse_object(reference)
    if value is None:
        raise EvaluationInputError(f"reference {row} is not a JSON object but the generation policy's output is json: "
                                   f"{reference[:80]!r}")
    field = policy.decision_field
    if field is not None and not (isinstance(value.get(field), str) and value[field]):
        raise EvaluationInputError(f"reference {row} has no string decision field {field!r}: {reference[:80]!r}")
    return value


def _decision_values(truths: list[dict[str, Any]], outputs: list[dict[str, Any] | None], valid: np.ndarray,
                     field: str) -> tuple[list[str], list[str], list[str]]:
    """True and predicted values of the decision field and the label list (the references' values, then UNUSABLE:
    what an invalid response or a value outside the references' predicts)."""
    y_true = [str(t[field]) for t in truths]
    labels = sorted(set(y_true)) + [UNUSABLE]
    canonical = {normalise_answer(label): label for label in labels[:-1]}
    predicted = [canonical.get(normalise_answer(o[field]), UNUSABLE) if ok and isinstance(o[field], str) else UNUSABLE
                 for o, ok in zip(outputs, valid)]
    return y_true, predicted, labels


def _report(prompts: Sequence[str], references: Sequence[str], responses: Sequence[str], exact: np.ndarray,
            valid: np.ndarray, costs: np.ndarray, accuracy: dict[str, float], decision: EvaluationReport | None,
            digest: str) -> GenerationReport:
    rows = pd.DataFrame({"prompt": list(prompts), "reference": list(references), "response": list(responses),
                         "exact": exact, "valid": valid, "cost": costs})
    return GenerationReport(n=len(rows), exact_match=float(exact.mean()), valid_output=float(valid.mean()),
                            field_accuracy=accuracy, cost_per_1000=float(costs.mean() * 1000), decision=decision,
                            rows=rows, evaluation_set=digest)


def comparison_markdown(challenger: GenerationReport, champion: GenerationReport | None) -> str:
    """metric | champion | challenger | delta, for the headline metrics and each field's accuracy."""
    ours, theirs = challenger.metrics(), champion.metrics() if champion is not None else {}
    keys = ["exact_match", "valid_output", "cost_per_1000", *(k for k in ours if k.startswith("field_accuracy_")),
            *(k for k in ("decision_macro_f1", "decision_accuracy") if k in ours)]
    rows = [[key, f"{theirs[key]:.3f}" if key in theirs else "—", f"{ours[key]:.3f}",
             f"{ours[key] - theirs[key]:+.3f}" if key in theirs else "—"] for key in keys]
    return markdown_table(["metric", "champion", "challenger", "delta"], rows)


def side_by_side(challenger: GenerationReport, champion: GenerationReport | None, limit: int = 10) -> str:
    """Up to `limit` examples as markdown where the two models' responses differ (without a champion: the
    challenger's misses): prompt end, reference, champion's and challenger's responses."""
    rows = challenger.rows
    theirs = champion.rows["response"] if champion is not None else pd.Series([""] * len(rows))
    differ = (rows["response"] != theirs.to_numpy()) if champion is not None else ~rows["exact"]
    picked = rows[differ.to_numpy()].head(limit)

    def cell(text: str, keep: int = 80) -> str:
        text = md_escape(text)
        return text if len(text) <= keep else "…" + text[-keep:]

    table = [[cell(r.prompt), cell(r.reference), cell(str(theirs.iloc[i])) if champion is not None else "—",
              cell(r.response)] for i, r in zip(picked.index, picked.itertuples())]
    return markdown_table(["prompt (end)", "reference", "champion", "challenger"], table)
