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


# ---------------------------------------------------------------- generative customisations (prompt,response files)

# A decision field is a category: at least two values, and at most this share of the rows (five examples per value
# on average; free text has about one value per row). No cap on the count: CLINC150's 150 intents are one field.
DECISION_VALUE_SHARE = 0.2


@dataclass(frozen=True)
class InstructionSummary:
    """What a prompt,response file holds, validated as `raw_examples` would for a causal-lm customisation."""

    path: Path
    received: int
    valid: int
    quarantined: dict[str, int]
    output: str  # "json" when every response is one JSON object, else "text"
    decision_field: str | None  # the JSON field that looks like a decision (a category), if any
    decision_counts: dict[str, int]
    fields: list[str]  # every JSON field of the responses (json output)
    responses: list[str]

    def markdown(self) -> str:
        lines = [f"{self.path}: {self.received} rows, {self.valid} valid, {sum(self.quarantined.values())} "
                 f"quarantined, {self.output} responses"
                 + (f", decision field {self.decision_field!r} ({len(self.decision_counts)} values)"
                    if self.decision_field else "")]
        lines += [f"  quarantined ({reason}): {rows}" for reason, rows in sorted(self.quarantined.items())]
        return "\n".join(lines)


def summarise_instructions(path: Path, max_text_chars: int) -> InstructionSummary:
    """Validate `path` with the raw_examples rules for instructions and read what its responses are: JSON objects or
    text, and which JSON field is a decision (a string in every response, with at least two values and at most
    DECISION_VALUE_SHARE of the rows; of several, the one with the fewest). OnboardingError when no row is usable."""
    from modelops.core.data.instructions import read_instructions
    from modelops.core.evaluation.generation_evaluation import parse_object

    result = read_instructions(Path(path), max_text_chars)
    quarantined = {str(reason): int(n) for reason, n in result.rejected["reason"].value_counts().items()}
    if result.valid.empty:
        raise OnboardingError(f"{path}: no valid prompt,response row among {result.received} rows (quarantine "
                              f"reasons: {quarantined}). The file needs the columns 'prompt' and 'response'.")
    responses = result.valid["response"].tolist()
    objects = [parse_object(r) for r in responses]
    if any(o is None for o in objects):
        return InstructionSummary(Path(path), result.received, len(responses), quarantined, "text", None, {}, [],
                                  responses)
    candidates = {}
    for field in set.intersection(*(set(o) for o in objects)):
        values = [o[field] for o in objects]
        counts = Counter(values) if all(isinstance(v, str) and v for v in values) else None
        if counts and 2 <= len(counts) <= DECISION_VALUE_SHARE * len(values):
            candidates[field] = dict(counts)
    field = min(candidates, key=lambda f: (len(candidates[f]), f)) if candidates else None
    return InstructionSummary(Path(path), result.received, len(responses), quarantined, "json", field,
                              candidates.get(field, {}), sorted(set().union(*objects)), responses)


def generation_evaluation_policy(summary: InstructionSummary, max_new_tokens: int) -> str:
    """evaluation.yaml for a causal-lm customisation: the decision field's values priced at the default error cost
    and gated as a classifier's labels (gate_defaults), the other JSON fields at the default cost each, responses
    cut at `max_new_tokens`."""
    labels = DataSummary(summary.path, summary.received, summary.valid, summary.quarantined,
                         summary.decision_counts or {"": summary.valid})
    gate = gate_defaults(labels)
    if summary.decision_field is None:  # no decision to score like a classifier: only size and format floors apply
        gate.update(min_macro_f1=0.0, min_accuracy=0.0, min_class_f1=0.0, macro_f1_tolerance=1.0,
                    max_class_f1_drop=1.0)
    fields = [f for f in summary.fields if f != summary.decision_field]
    policy = {
        "cost_model": {"default_error_cost": DEFAULT_ERROR_COST, "correct_cost": 0.0,
                       "missed_class_costs": {label: DEFAULT_ERROR_COST for label in sorted(summary.decision_counts)},
                       "pair_costs": [], "allow_default_costs": not summary.decision_counts},
        "gate": gate,
        "generation": {"output": summary.output, "max_new_tokens": max_new_tokens,
                       "decision_field": summary.decision_field,
                       "field_costs": {f: DEFAULT_ERROR_COST for f in fields},
                       "invalid_output_cost": DEFAULT_ERROR_COST, "min_valid_output": 0.95, "min_exact_match": 0.0,
                       "exact_match_tolerance": gate["macro_f1_tolerance"] if summary.decision_field else 0.01},
    }
    return (f"# Evaluation policy written by `modelops init --task causal-lm` for {summary.path.name}.\n"
            "# Costs are in your own units per request; every value below is a default for you to edit: raise the\n"
            "# decision values whose misses hurt, price each JSON field by what a wrong value costs you. Responses\n"
            "# are cut at max_new_tokens: the longest response of your data in the base's tokens, plus a quarter.\n"
            "# Read as modelops.core.evaluation.evaluation_policy.EvaluationPolicy; unknown keys are rejected.\n\n"
            + yaml.safe_dump(policy, sort_keys=False, allow_unicode=True))
