"""The promotion gate on small, hand-built confusion patterns, and its config loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops.core.config_files import ConfigError, load_config
from modelops.core.evaluation.evaluate import EvaluationReport
from modelops.core.evaluation.evaluation_policy import EvaluationPolicy, GateRules
from modelops.core.evaluation.gate import GateDecision, decide
from modelops.settings import PACKAGE_CONFIG_DIR
from modelops_tests.helpers import CHAMPION_COUNTS, GATE_COSTS, GATE_LABELS, report_from_counts

DEFAULT_CONFIG = PACKAGE_CONFIG_DIR / "evaluation.yaml"
LABELS, COSTS = GATE_LABELS, GATE_COSTS
# Defaults: min 50 examples, F1 >= 0.5, accuracy >= 0.6, class F1 >= 0.1, tolerance 0.01, cost +0, class drop 0.10.
RULES = GateRules()


def check_names(decision: GateDecision) -> dict[str, bool]:
    return {check.name: check.passed for check in decision.checks}


@pytest.fixture()
def champion() -> EvaluationReport:
    return report_from_counts(CHAMPION_COUNTS)


# ------------------------------------------------------------------------------------------ first model


def test_first_model_passing_absolute_minimums() -> None:
    decision = decide(report_from_counts(CHAMPION_COUNTS), None, RULES)
    assert decision.passed and decision.reasons == []
    assert check_names(decision) == {"eval_size": True, "min_macro_f1": True, "min_accuracy": True,
                                     "min_class_f1": True}


def test_first_model_below_floors_fails() -> None:
    # 8 of 20 right per class: accuracy 0.4; F1 billing 0.400, fraud 0.571, refund 0.308 -> macro 0.426.
    poor = {(t, t): 8 for t in LABELS} | {("billing", "refund"): 12, ("fraud_report", "refund"): 12,
                                           ("refund", "billing"): 12}
    decision = decide(report_from_counts(poor), None, RULES)
    assert not decision.passed
    assert check_names(decision) == {"eval_size": True, "min_macro_f1": False, "min_accuracy": False,
                                     "min_class_f1": True}  # every class F1 >= 0.308
    assert decision.reasons == ["macro-F1 0.426 < floor 0.500", "accuracy 0.400 < floor 0.600"]


def test_small_eval_set_fails() -> None:
    small = {key: count // 2 for key, count in CHAMPION_COUNTS.items()}  # 30 examples
    decision = decide(report_from_counts(small), None, RULES)
    assert not decision.passed
    assert decision.reasons == ["evaluation set n=30 < minimum 50"]


# ----------------------------------------------------------------------------------- against a champion


def test_better_challenger_passes(champion: EvaluationReport) -> None:
    better = {key: 19 if key[0] == key[1] else 1 for key in CHAMPION_COUNTS}
    decision = decide(report_from_counts(better), champion, RULES)
    assert decision.passed, decision.reasons
    assert list(check_names(decision)) == [
        "eval_size", "min_macro_f1", "min_accuracy", "min_class_f1", "label_set", "eval_set",
        "macro_f1_vs_champion", "cost_vs_champion", "class_f1_drop",
    ]


def test_identical_challenger_passes_on_the_boundary(champion: EvaluationReport) -> None:
    assert decide(report_from_counts(CHAMPION_COUNTS), champion, RULES).passed


def test_worse_macro_f1_fails_with_reason(champion: EvaluationReport) -> None:
    # 16 of 20 right per class: F1 billing 32/44, fraud 32/36, refund 32/40 -> macro 0.805 (champion 0.902).
    worse = {key: 16 if key[0] == key[1] else 4 for key in CHAMPION_COUNTS}
    decision = decide(report_from_counts(worse), champion, RULES)
    assert not decision.passed
    assert not check_names(decision)["macro_f1_vs_champion"]
    assert "macro-F1 0.805 < champion 0.902 - 0.010 tolerance" in decision.reasons


def test_higher_cost_fails(champion: EvaluationReport) -> None:
    # Same accuracy and macro-F1, but missed fraud now goes to refund (25) instead of billing (5).
    costlier = dict(CHAMPION_COUNTS)
    costlier[("fraud_report", "refund")] = costlier.pop(("fraud_report", "billing"))
    challenger = report_from_counts(costlier)
    assert challenger.macro_f1 == pytest.approx(champion.macro_f1)
    decision = decide(challenger, champion, RULES)
    assert not decision.passed
    assert [c.name for c in decision.checks if not c.passed] == ["cost_vs_champion"]
    # Champion: 2*1 + 2*5 + 2*1 = 14 per 60; challenger: 2*1 + 2*25 + 2*1 = 54 per 60.
    assert decision.reasons == ["expected cost/1000 900.00 > champion 233.33 + 0.00 allowed increase"]


def test_one_class_collapsing_fails(champion: EvaluationReport) -> None:
    collapsed = {("billing", "billing"): 20, ("fraud_report", "fraud_report"): 12, ("fraud_report", "billing"): 8,
                 ("refund", "refund"): 20}
    lenient = GateRules(macro_f1_tolerance=1.0, max_cost_increase=1e6, max_class_f1_drop=0.10)
    decision = decide(report_from_counts(collapsed), champion, lenient)
    assert not decision.passed
    assert [c.name for c in decision.checks if not c.passed] == ["class_f1_drop"]
    (reason,) = decision.reasons
    assert "fraud_report 0.947 -> 0.750 (-0.197)" in reason and "billing" not in reason


def test_a_class_the_champion_already_failed_cannot_hide_behind_a_better_macro_f1() -> None:
    """The poisoned-feedback case: fraud tickets relabelled as billing. The champion already misses most fraud, so the
    per-class drop rule (here 0.30) tolerates the fall, and the challenger's macro-F1 is higher; only the
    per-class floor refuses it."""
    champion = report_from_counts({("billing", "billing"): 12, ("billing", "refund"): 8,
                                   ("fraud_report", "billing"): 16, ("fraud_report", "fraud_report"): 4,
                                   ("refund", "refund"): 12, ("refund", "billing"): 8})
    poisoned = report_from_counts({("billing", "billing"): 20, ("fraud_report", "billing"): 19,
                                   ("fraud_report", "fraud_report"): 1, ("refund", "refund"): 20})
    lenient = GateRules(min_macro_f1=0.0, min_accuracy=0.0, max_class_f1_drop=0.30)
    assert poisoned.macro_f1 > champion.macro_f1 and poisoned.f1_by_label()["fraud_report"] < 0.1
    decision = decide(poisoned, champion, lenient)
    assert not decision.passed
    assert [c.name for c in decision.checks if not c.passed] == ["min_class_f1"]
    assert decision.reasons == [f"per-class F1 below the floor 0.100: fraud_report "
                                f"{poisoned.f1_by_label()['fraud_report']:.3f}"]
    assert decide(poisoned, champion, GateRules(min_macro_f1=0.0, min_accuracy=0.0, min_class_f1=0.0,
                                                max_class_f1_drop=0.30)).passed  # the floor was the only guard


def test_a_challenger_without_one_of_the_champion_labels_fails_without_exception(champion: EvaluationReport) -> None:
    labels = ["billing", "refund"]
    counts = {key: n for key, n in CHAMPION_COUNTS.items() if "fraud_report" not in key}
    decision = decide(report_from_counts(counts, labels), champion, RULES)
    assert not decision.passed
    assert check_names(decision)["label_set"] is False
    assert any("label sets differ" in reason and "fraud_report" in reason for reason in decision.reasons)


def test_a_new_label_is_compared_on_the_champion_rows_and_held_to_the_floors(champion: EvaluationReport) -> None:
    labels = [*LABELS, "shipping"]
    on_old_rows = report_from_counts(CHAMPION_COUNTS, labels)  # the challenger on the champion's rows
    learnt = report_from_counts({**CHAMPION_COUNTS, ("shipping", "shipping"): 20}, labels)
    decision = decide(learnt, champion, RULES, compared=on_old_rows)
    assert decision.passed, decision.reasons
    assert "adds new labels ['shipping']" in next(c.detail for c in decision.checks if c.name == "label_set")
    unlearnt = report_from_counts({**CHAMPION_COUNTS, ("shipping", "billing"): 20}, labels)
    decision = decide(unlearnt, champion, RULES, compared=on_old_rows)
    assert [c.name for c in decision.checks if not c.passed] == ["min_class_f1"]
    assert "shipping 0.000" in decision.reasons[0]
    # without the comparison on the champion's rows, the new label's rows make the evaluation sets differ
    assert check_names(decide(learnt, champion, RULES))["eval_set"] is False


def test_different_eval_sets_fail(champion: EvaluationReport) -> None:
    bigger = {key: count * 2 for key, count in CHAMPION_COUNTS.items()}
    decision = decide(report_from_counts(bigger), champion, RULES)
    assert not decision.passed
    assert any("re-evaluate the champion" in reason for reason in decision.reasons)


def test_detail_uses_the_documented_wording() -> None:
    def fake(macro_f1: float) -> EvaluationReport:
        per_class = pd.DataFrame({"precision": [1.0], "recall": [1.0], "f1": [1.0], "support": [100]},
                                 index=pd.Index(["a"], name="label"))
        return EvaluationReport(["a"], 100, 1.0, macro_f1, per_class, 0.0, np.array([[100]]), 0.0)

    rules = GateRules(macro_f1_tolerance=0.02)
    decision = decide(fake(0.812), fake(0.830), rules)
    detail = next(c.detail for c in decision.checks if c.name == "macro_f1_vs_champion")
    assert detail == "macro-F1 0.812 >= champion 0.830 - 0.020 tolerance"
    exact = decide(fake(0.81), fake(0.83), rules)  # 0.83 - 0.02 is 0.8099999... in floats
    assert exact.passed


def test_markdown_lists_every_check(champion: EvaluationReport) -> None:
    worse = {key: 16 if key[0] == key[1] else 4 for key in CHAMPION_COUNTS}
    decision = decide(report_from_counts(worse), champion, RULES)
    markdown = decision.markdown()
    assert "| check | result | detail |" in markdown
    for check in decision.checks:
        row = f"| {check.name} | {'pass' if check.passed else 'FAIL'} | {check.detail} |"
        assert row in markdown
    assert "failed" in markdown.splitlines()[0]


# ---------------------------------------------------------------------------------------------- config


def test_default_config_gate_rules() -> None:
    assert load_config(DEFAULT_CONFIG, GateRules, "gate") == GateRules(
        min_eval_size=50, min_macro_f1=0.5, min_accuracy=0.6, min_class_f1=0.1, macro_f1_tolerance=0.01,
        max_cost_increase=0.0, max_class_f1_drop=0.10,
    )


def _write_gate(tmp_path: Path, **changes: Any) -> Path:
    document = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for key, value in changes.items():
        if value is None:
            document["gate"].pop(key)
        else:
            document["gate"][key] = value
    path = tmp_path / "evaluation.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"min_accuracy": None}, "gate", r"missing required key\(s\) \['min_accuracy'\]"),
        ({"min_acuracy": 0.6}, "gate.min_acuracy", "unknown key; expected one of"),
        ({"min_eval_size": "fifty"}, "gate.min_eval_size", "valid integer"),
        ({"min_eval_size": 50.5}, "gate.min_eval_size", "valid integer"),
        ({"min_eval_size": 0}, "gate.min_eval_size", "greater than or equal to 1"),
        ({"min_macro_f1": 1.5}, "gate.min_macro_f1", "less than or equal to 1"),
        ({"max_class_f1_drop": -0.1}, "gate.max_class_f1_drop", "greater than or equal to 0"),
        ({"min_class_f1": 2}, "gate.min_class_f1", "less than or equal to 1"),
        ({"macro_f1_tolerance": "small"}, "gate.macro_f1_tolerance", "valid number"),
        ({"max_cost_increase": -1.0}, "gate.max_cost_increase", "greater than or equal to 0"),
    ],
)
def test_gate_config_errors(tmp_path: Path, changes: dict[str, Any], key: str, message: str) -> None:
    path = _write_gate(tmp_path, **changes)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path, EvaluationPolicy)
    assert caught.value.field == key
    assert str(path) in str(caught.value)


def test_gate_section_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "evaluation.yaml"
    path.write_text(yaml.safe_dump({"cost_model": {"default_error_cost": 1.0, "correct_cost": 0.0,
                                                   "missed_class_costs": {}, "pair_costs": []}}))
    with pytest.raises(ConfigError, match="missing") as caught:
        load_config(path, EvaluationPolicy)
    assert caught.value.field == "gate"
