"""Scoring generated responses under the owner's generation policy, and the generation gate."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from modelops.core.evaluation.evaluate import EvaluationInputError
from modelops.core.evaluation.evaluation_policy import CostModel, GateRules, GenerationPolicy
from modelops.core.evaluation.generation_evaluation import (
    UNUSABLE,
    comparison_markdown,
    evaluate_generations,
    side_by_side,
)
from modelops.core.evaluation.generation_gate import decide_generation

COSTS = CostModel(default_error_cost=1.0, missed_class_costs={"fraud_report": 25.0})
POLICY = GenerationPolicy(output="json", decision_field="intent", field_costs={"order_number": 0.5},
                          invalid_output_cost=2.0, min_valid_output=0.9)
RULES = GateRules(min_eval_size=5, min_macro_f1=0.0, min_accuracy=0.0, min_class_f1=0.0)
FRAUD = json.dumps({"intent": "fraud_report", "order_number": "#A12345"})
REFUND = json.dumps({"intent": "refund", "order_number": None})
REFERENCES = [FRAUD, REFUND, FRAUD, REFUND, REFUND, FRAUD, REFUND]
PROMPTS = [f"ticket {i}\nJSON:" for i in range(len(REFERENCES))]
RESPONSES = [
    '{"order_number": "#a12345", "intent": "Fraud_Report "}',  # exact after normalisation, keys in another order
    '{"intent": "refund", "order_number": null}',  # exact
    '{"intent": "refund", "order_number": "#A12345"}',  # a missed fraud report: 25
    '{"intent": "refund", "order_number": "#B99999"}',  # wrong order number: 0.5
    "intent: refund",  # not JSON: 2
    '{"intent": "fraud_report"}',  # a field missing: invalid, 2
    '{"intent": "refunds", "order_number": null}',  # a value outside the labels: a default error, 1
]


def test_json_responses_are_scored_field_by_field_at_the_owners_costs():
    report = evaluate_generations(PROMPTS, REFERENCES, RESPONSES, POLICY, COSTS)
    assert report.rows["exact"].tolist() == [True, True, False, False, False, False, False]
    assert report.rows["valid"].tolist() == [True, True, True, True, False, False, True]
    assert report.rows["cost"].tolist() == [0.0, 0.0, 25.0, 0.5, 2.0, 2.0, 1.0]
    assert report.exact_match == pytest.approx(2 / 7) and report.valid_output == pytest.approx(5 / 7)
    assert report.cost_per_1000 == pytest.approx(30.5 / 7 * 1000)
    assert report.field_accuracy == pytest.approx({"intent": 3 / 7, "order_number": 4 / 7})
    assert report.decision is not None and report.decision.label_names == ["fraud_report", "refund", UNUSABLE]
    assert report.decision.accuracy == pytest.approx(3 / 7)
    assert report.decision.support_by_label() == {"fraud_report": 3, "refund": 4, UNUSABLE: 0}
    metrics = report.metrics("test_")
    assert metrics["test_exact_match"] == pytest.approx(2 / 7) and metrics["test_decision_accuracy"] > 0
    assert metrics["test_field_accuracy_order_number"] == pytest.approx(4 / 7)


def test_text_responses_match_after_normalisation_and_cost_the_default_error():
    policy = GenerationPolicy()
    report = evaluate_generations(["a", "b"], ["Good morning", "Thank you"], ["good   MORNING ", "Thanks"], policy,
                                  COSTS)
    assert report.rows["exact"].tolist() == [True, False]
    assert report.cost_per_1000 == pytest.approx(500.0) and report.decision is None


def test_bad_input_and_bad_policies_are_refused_with_the_reason():
    with pytest.raises(EvaluationInputError, match="reference 1 is not a JSON object"):
        evaluate_generations(["a", "b"], [REFUND, "refund"], [REFUND, REFUND], POLICY, COSTS)
    with pytest.raises(EvaluationInputError, match="no string decision field 'intent'"):
        evaluate_generations(["a"], ['{"order_number": null}'], [REFUND], POLICY, COSTS)
    with pytest.raises(EvaluationInputError, match="each prompt needs one reference and one response"):
        evaluate_generations(["a"], [REFUND], [], POLICY, COSTS)
    with pytest.raises(ValidationError, match="need output: json"):
        GenerationPolicy(decision_field="intent")
    with pytest.raises(ValidationError, match="priced by cost_model"):
        GenerationPolicy(output="json", decision_field="intent", field_costs={"intent": 1.0})


def test_the_gate_holds_the_first_model_to_the_floors_and_a_challenger_to_the_champion():
    perfect = evaluate_generations(PROMPTS, REFERENCES, REFERENCES, POLICY, COSTS)
    flawed = evaluate_generations(PROMPTS, REFERENCES, RESPONSES, POLICY, COSTS)

    first = decide_generation(flawed, None, RULES, POLICY)
    assert not first.passed
    assert first.reasons == ["valid JSON output 0.714 < floor 0.900"]
    assert decide_generation(perfect, None, RULES, POLICY).passed

    worse = decide_generation(flawed, perfect, RULES, POLICY.model_copy(update={"min_valid_output": 0.5}))
    failed = {c.name for c in worse.checks if not c.passed}
    assert failed == {"exact_match_vs_champion", "cost_vs_champion", "decision_macro_f1_vs_champion",
                      "decision_class_f1_drop"}
    assert decide_generation(perfect, flawed, RULES, POLICY).passed

    elsewhere = evaluate_generations([p + "!" for p in PROMPTS], REFERENCES, REFERENCES, POLICY, COSTS)
    other_set = decide_generation(perfect, elsewhere, RULES, POLICY)
    assert [c.name for c in other_set.checks if not c.passed] == ["eval_set"]


def test_the_side_by_side_view_shows_where_the_models_disagree():
    perfect = evaluate_generations(PROMPTS, REFERENCES, REFERENCES, POLICY, COSTS)
    flawed = evaluate_generations(PROMPTS, REFERENCES, RESPONSES, POLICY, COSTS)
    table = side_by_side(flawed, perfect)
    assert "intent: refund" in table and len(table.splitlines()) == 2 + 6  # header, rule, the 6 responses that differ
    assert "| exact_match | 1.000 | 0.286 | -0.714 |" in comparison_markdown(flawed, perfect)
