"""Abstention: threshold selection on hand-built confidences and costs, its report, its policy file, the gate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelops.core.evaluation.abstention import ServedAbstention, abstention_report, choose_threshold, fit_abstention
from modelops.core.config_files import ConfigError, load_config
from modelops.core.evaluation.evaluation_policy import AbstentionPolicy, CostModel, EvaluationPolicy, GateRules
from modelops.core.evaluation.gate import decide
from modelops_tests.helpers import CHAMPION_COUNTS, report_from_counts

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "modelops" / "config" / "evaluation.yaml"
COSTS = CostModel(default_error_cost=1.0, missed_class_costs={"fraud_report": 10.0})
RULES = GateRules()


def test_the_threshold_minimises_the_owners_cost_on_hand_built_rows() -> None:
    confidence = np.array([0.95, 0.90, 0.80, 0.60, 0.55, 0.40, 0.30])
    costs = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0])  # errors at 0.60, 0.40, 0.30
    # fallback 0.2: abstaining below 0.7 costs 4 x 0.2 = 0.8 (< 3 errors, < 0.6 below 0.5 + 1 error at 0.60).
    assert choose_threshold(confidence, costs, 0.2) == pytest.approx(0.70)
    # fallback 0.6: abstaining below 0.475 (2 x 0.6 = 1.2 + 1 error) beats 3 errors and below 0.7 (2.4).
    assert choose_threshold(confidence, costs, 0.6) == pytest.approx(0.475)
    # A fallback as dear as an error never pays: answer everything.
    assert choose_threshold(confidence, costs, 1.0) == 0.0


def test_equal_confidences_move_together_and_ties_keep_more_answers() -> None:
    confidence = np.array([0.5, 0.5, 0.5, 0.9])
    costs = np.array([1.0, 0.0, 0.0, 0.0])
    # Rows of one confidence cannot be split; abstaining on all three costs 3 x 0.4 = 1.2 > the one error.
    assert choose_threshold(confidence, costs, 0.4) == 0.0
    # At fallback 1/3 both options cost 1.0: the lower threshold (more requests answered) wins.
    assert choose_threshold(confidence, costs, 1 / 3) == 0.0
    with pytest.raises(ValueError, match="same, non-zero length"):
        choose_threshold(np.array([]), np.array([]), 0.1)


def test_a_report_gives_coverage_accuracy_and_cost_with_and_without_the_fallback() -> None:
    policy = AbstentionPolicy(fallback_label="human_review", fallback_cost=0.5)
    true = ["billing", "fraud_report", "refund", "billing"]
    predicted = ["billing", "billing", "refund", "refund"]
    report = abstention_report(true, predicted, np.array([0.9, 0.3, 0.8, 0.4]), 0.5, policy, COSTS)
    assert report.coverage == 0.5 and report.covered_accuracy == 1.0
    assert report.cost_per_1000_without == pytest.approx((10.0 + 1.0) / 4 * 1000)
    assert report.cost_per_1000 == pytest.approx((0.5 + 0.5) / 4 * 1000)
    fitted = fit_abstention((true, predicted, np.array([0.9, 0.3, 0.8, 0.4])),
                            (true, predicted, np.array([0.9, 0.3, 0.8, 0.4])), policy, COSTS)
    assert fitted.threshold == pytest.approx(0.6) and fitted.cost_per_1000 == report.cost_per_1000


def test_the_gate_compares_each_model_at_its_own_threshold() -> None:
    champion = report_from_counts(CHAMPION_COUNTS)
    worse_counts = {**CHAMPION_COUNTS, ("refund", "refund"): 17, ("refund", "billing"): 3}
    challenger = report_from_counts(worse_counts)
    assert not {c.name: c.passed for c in decide(challenger, champion, RULES).checks}["cost_vs_champion"]
    policy = AbstentionPolicy(fallback_label="human_review", fallback_cost=0.1)

    def served(report, cost: float):
        return dataclasses.replace(report, abstention=dataclasses.replace(
            abstention_report(["billing"], ["billing"], np.array([1.0]), 0.5, policy, COSTS), cost_per_1000=cost))

    checks = {c.name: c for c in decide(served(challenger, 40.0), served(champion, 45.0), RULES).checks}
    assert checks["cost_vs_champion"].passed and "its own threshold" in checks["cost_vs_champion"].detail


def _config(tmp_path: Path, abstention: object) -> Path:
    document = yaml.safe_load(DEFAULT_CONFIG.read_text())
    document.pop("abstention", None)
    if abstention is not None:
        document["abstention"] = abstention
    path = tmp_path / "evaluation.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_policy_without_an_abstention_section_keeps_answering_everything(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, None), EvaluationPolicy).abstention is None
    policy = load_config(_config(tmp_path, {"fallback_label": "human_review", "fallback_cost": 0.3}), EvaluationPolicy)
    assert policy.abstention == AbstentionPolicy(fallback_label="human_review", fallback_cost=0.3)


@pytest.mark.parametrize(("section", "message"), [
    ({"fallback_label": "human_review"}, "abstention.fallback_cost: missing required key"),
    ({"fallback_label": "human_review", "fallback_cost": -1}, "abstention.fallback_cost: Input should be greater"),
    ({"fallback_label": "", "fallback_cost": 0.3}, "abstention.fallback_label: String should have at least 1"),
    ({"fallback_label": "human_review", "fallback_cost": 0.3, "threshold": 0.5}, "abstention.threshold: unknown"),
    ("yes", "abstention: Input should be a valid dictionary"),
])
def test_bad_abstention_settings_are_refused_with_the_key(tmp_path: Path, section: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, section), EvaluationPolicy)


def test_the_fallback_label_must_not_be_a_model_label(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="abstention.fallback_label: 'billing' is one of the model's labels"):
        AbstentionPolicy(fallback_label="billing", fallback_cost=0.3).check_not_a_model_label(
            ["billing", "refund"], tmp_path / "evaluation.yaml")


def test_the_threshold_travels_as_model_version_tags() -> None:
    served = ServedAbstention(0.4375, "human_review")
    assert ServedAbstention.from_tags({**served.tags(), "gate_passed": "True"}) == served
    assert ServedAbstention.from_tags({"gate_passed": "True"}) is None
