"""Onboarding a customisation from the owner's own labelled file: what the data holds, and policies written for it.

`modelops init` validates the file with the rules of `raw_examples`, then writes policy files that name the data's
own labels. Gate defaults follow stated principles from the data's size, never a fitted value:
- `min_eval_size`: 50 test examples, or the test split's expected size when the data is smaller;
- `macro_f1_tolerance`: one standard error of a test-set proportion at its widest, 0.5 / sqrt(test rows), at
  least 0.01: a challenger within sampling noise of the champion is not "worse";
- `max_class_f1_drop`: an error on one of m test examples of a class moves its F1 by about 1/m; the gate allows
  two such errors, 2 / m for the median class (at least 0.10, at most 0.5);
- floors (`min_macro_f1`, `min_accuracy`, `min_class_f1`) and `max_cost_increase` are the owner's business
  decisions: the shipped defaults, with a comment saying so.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelops.core.data.curate import SplitFractions
from modelops.core.data.schema import ValidationResult, read_examples

DEFAULT_ERROR_COST = 1.0


class OnboardingError(ValueError):
    """The owner's file cannot start a customisation (no valid rows, unreadable); says what to fix."""


@dataclass(frozen=True)
class DataSummary:
    """What a labelled file holds, validated as `raw_examples` would."""

    path: Path
    received: int
    valid: int
    quarantined: dict[str, int]  # reason -> rows
    label_counts: dict[str, int]

    @property
    def expected_test_rows(self) -> int:
        return int(self.valid * SplitFractions().test)

    def markdown(self) -> str:
        lines = [f"{self.path}: {self.received} rows, {self.valid} valid, {sum(self.quarantined.values())} "
                 f"quarantined, {len(self.label_counts)} labels"]
        lines += [f"  quarantined ({reason}): {rows}" for reason, rows in sorted(self.quarantined.items())]
        counts = sorted(self.label_counts.values())
        lines.append(f"  examples per label: min {counts[0]}, median {counts[len(counts) // 2]}, max {counts[-1]}")
        return "\n".join(lines)


def summarise_data(path: Path, text_column: str, label_column: str, max_text_chars: int) -> DataSummary:
    """Validate `path` with the raw_examples rules; OnboardingError when no row is usable."""
    result: ValidationResult = read_examples(Path(path), text_column, label_column, max_text_chars)
    quarantined = {str(reason): int(n) for reason, n in result.rejected["reason"].value_counts().items()}
    if result.valid.empty:
        raise OnboardingError(
            f"{path}: no valid example among {result.received} rows (quarantine reasons: {quarantined}). Check "
            f"--text-column ({text_column!r}) and --label-column ({label_column!r}).")
    labels = Counter(result.valid["label"].astype(str))
    if len(labels) < 2:
        raise OnboardingError(f"{path}: every valid row has the label {next(iter(labels))!r}; a classifier needs at "
                              "least two labels")
    return DataSummary(Path(path), result.received, len(result.valid), quarantined, dict(labels))


def gate_defaults(summary: DataSummary) -> dict[str, float | int]:
    """Gate rules for this data (principles in the module docstring)."""
    test_rows = max(summary.expected_test_rows, 1)
    per_label = sorted(summary.label_counts.values())
    median_test_per_label = max(per_label[len(per_label) // 2] * SplitFractions().test, 1.0)
    return {
        "min_eval_size": min(50, test_rows),
        "min_macro_f1": 0.5,
        "min_accuracy": 0.6,
        "min_class_f1": 0.1,
        "macro_f1_tolerance": round(max(0.01, 0.5 / math.sqrt(test_rows)), 3),
        "max_cost_increase": 0.0,
        "max_class_f1_drop": round(min(0.5, max(0.10, 2.0 / median_test_per_label)), 3),
    }


def evaluation_policy(summary: DataSummary) -> str:
    """evaluation.yaml for these labels: every label priced at the default error cost, for the owner to edit."""
    priced = {label: DEFAULT_ERROR_COST for label in sorted(summary.label_counts)}
    costs = yaml.safe_dump({"missed_class_costs": priced}, sort_keys=False, allow_unicode=True)
    costs = costs.replace("\n  ", "\n    ").rstrip()
    gate = yaml.safe_dump({"gate": gate_defaults(summary)}, sort_keys=False).rstrip()
    return f"""# Evaluation policy written by `modelops init` for {summary.path.name} ({len(summary.label_counts)} labels).
# Read as modelops.core.evaluation.evaluation_policy.EvaluationPolicy; unknown keys are rejected.

cost_model:
  # What a wrong answer costs you, per request, in your own units (minutes of handling, currency, ...).
  # Lookup order for a (true, predicted) pair: correct_cost -> pair_costs -> missed_class_costs -> default_error_cost.
  default_error_cost: {DEFAULT_ERROR_COST}
  correct_cost: 0.0
  # Every label of your data, at the default cost. Raise the labels whose misses hurt (an urgent case routed to
  # the wrong team), lower those that are cheap to re-route. A label you delete here costs default_error_cost.
  {costs}
  # Specific (true, predicted) pairs that cost more or less than the rules above, e.g.
  #   - {{true: lost_card, predicted: card_arrival, cost: 20.0}}
  # Quote labels such as "yes"/"no"/"on" that YAML would read as booleans.
  pair_costs: []

# When a challenger may replace the champion. Floors are your business decision (shipped defaults); the two
# tolerances follow the size of your test split: macro_f1_tolerance = max(0.01, 0.5 / sqrt(test rows)),
# max_class_f1_drop = 2 / (median test examples per label), between 0.10 and 0.5 (modelops.core.data.onboarding).
{gate}

# Abstention (optional): below a confidence threshold, hand the request to your fallback instead of answering.
# The threshold is chosen at each evaluation to minimise your expected cost on the validation split and recorded
# with the model version; the server then answers fallback_label (plus the model's best guess). Uncomment to use:
# abstention:
#   fallback_label: human_review   # a label your model does not predict
#   fallback_cost: 0.3             # what handling one request by hand costs, in the units above
"""
