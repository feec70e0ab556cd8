"""Evaluation metrics, business cost, presentation and config loading on tiny hand-computed cases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from modelops.core.config_files import ConfigError, load_config
from modelops.core.evaluation.evaluate import (
    EvaluationInputError,
    EvaluationReport,
    comparison_markdown,
    confusion_matrix_png,
    cost_coverage,
    evaluate,
    expected_calibration_error,
)
from modelops.core.evaluation.evaluation_policy import CostModel, EvaluationPolicy


def load_cost_model(path: Path, label_names: tuple[str, ...] | None = None) -> CostModel:
    model = load_config(path, CostModel, "cost_model")
    if label_names is not None:
        model.check_labels(label_names, path)
    return model

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "modelops" / "config" / "evaluation.yaml"
INTENTS = (
    "billing", "refund", "shipping", "account_access", "technical_issue",
    "cancellation", "product_question", "complaint", "fraud_report", "address_change",
)
LABELS = ["a", "b", "c"]
# Predictions: a (0.70, right), b (0.50, wrong: true a), b (0.85, right), c (0.65, right).
# Every confidence falls in a different 1/15-wide ECE bin and none sits on a bin edge.
Y_TRUE = ["a", "a", "b", "c"]
PROBS = np.array([
    [0.70, 0.20, 0.10],
    [0.40, 0.50, 0.10],
    [0.15, 0.85, 0.00],
    [0.25, 0.10, 0.65],
])
COSTS = CostModel(default_error_cost=1.0, correct_cost=0.0, pair_costs=[{"true": "a", "predicted": "b", "cost": 4.0}],
                  missed_class_costs={"a": 3.0, "c": 10.0})


@pytest.fixture()
def report() -> EvaluationReport:
    return evaluate(Y_TRUE, PROBS, LABELS, COSTS)


# ------------------------------------------------------------------------------------------- metrics


def test_accuracy_macro_f1_and_confusion(report: EvaluationReport) -> None:
    assert report.n == 4
    assert report.accuracy == pytest.approx(0.75)
    # F1: a = 2/3 (P 1, R 1/2), b = 2/3 (P 1/2, R 1), c = 1.
    assert report.macro_f1 == pytest.approx(7 / 9)
    np.testing.assert_array_equal(report.confusion, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])


def test_per_class_table(report: EvaluationReport) -> None:
    table = report.per_class
    assert list(table.index) == LABELS and table.index.name == "label"
    assert list(table.columns) == ["precision", "recall", "f1", "support"]
    np.testing.assert_allclose(table["precision"], [1.0, 0.5, 1.0])
    np.testing.assert_allclose(table["recall"], [0.5, 1.0, 1.0])
    np.testing.assert_allclose(table["f1"], [2 / 3, 2 / 3, 1.0])
    assert table["support"].tolist() == [2, 1, 1]
    markdown = report.per_class_markdown()
    assert "| label | precision | recall | F1 | support |" in markdown
    assert "| a | 1.000 | 0.500 | 0.667 | 2 |" in markdown


def test_ece_hand_computed(report: EvaluationReport) -> None:
    # One example per bin: mean |correct - confidence| = (0.30 + 0.50 + 0.15 + 0.35) / 4.
    assert report.ece == pytest.approx(0.325)


def test_ece_averages_within_a_bin() -> None:
    # 0.70 and 0.72 share the bin (10/15, 11/15]: |accuracy 0.5 - confidence 0.71| = 0.21.
    ece = expected_calibration_error(np.array([0.70, 0.72]), np.array([True, False]))
    assert ece == pytest.approx(0.21)


def test_ece_is_zero_when_perfectly_calibrated() -> None:
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0.0


def test_expected_cost_per_1000(report: EvaluationReport) -> None:
    # One error a -> b costs the pair override 4.0; three correct cost 0 -> 4 / 4 examples * 1000.
    assert report.expected_cost_per_1000 == pytest.approx(1000.0)
    with_correct_cost = COSTS.model_copy(update={"correct_cost": 0.1, "missed_class_costs": {}})
    assert evaluate(Y_TRUE, PROBS, LABELS, with_correct_cost).expected_cost_per_1000 == pytest.approx(1075.0)


def test_cost_precedence() -> None:
    assert COSTS.cost("a", "a") == 0.0  # correct
    assert COSTS.cost("a", "b") == 4.0  # pair beats missed class
    assert COSTS.cost("a", "c") == 3.0  # missed class
    assert COSTS.cost("c", "b") == 10.0  # missed class
    assert COSTS.cost("b", "a") == 1.0  # default
    np.testing.assert_array_equal(COSTS.cost_matrix(LABELS), [[0, 4, 3], [1, 0, 1], [10, 10, 0]])


def test_macro_f1_ignores_labels_absent_from_truth_and_predictions() -> None:
    result = evaluate(["a", "b"], np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]]), LABELS, COSTS)
    assert result.macro_f1 == 1.0
    assert result.per_class.loc["c", "support"] == 0


def test_metrics_are_flat_floats_with_prefix(report: EvaluationReport) -> None:
    metrics = report.metrics(prefix="test_")
    assert metrics["test_accuracy"] == pytest.approx(0.75)
    assert metrics["test_macro_f1"] == pytest.approx(7 / 9)
    assert metrics["test_ece"] == pytest.approx(0.325)
    assert metrics["test_expected_cost_per_1000"] == pytest.approx(1000.0)
    assert metrics["test_n"] == 4.0
    assert metrics["test_f1_c"] == 1.0
    assert all(type(value) is float for value in metrics.values())
    assert set(report.metrics()) == {key.removeprefix("test_") for key in metrics}


# ------------------------------------------------------------------------------------------ input errors


@pytest.mark.parametrize(
    ("y_true", "probs", "labels", "message"),
    [
        (Y_TRUE, PROBS[:3], LABELS, "shape"),
        (Y_TRUE, PROBS[:, :2], LABELS, "shape"),
        (Y_TRUE, PROBS[:, 0], LABELS, "shape"),
        ([], np.zeros((0, 3)), LABELS, "empty"),
        (["a", "a", "b", "d"], PROBS, LABELS, "'d'"),
        (Y_TRUE, PROBS * 2, LABELS, r"\[0, 1\]"),
        (Y_TRUE, PROBS - 0.5, LABELS, r"\[0, 1\]"),
        (Y_TRUE, np.where(PROBS == 0.0, np.nan, PROBS), LABELS, "NaN"),
        (Y_TRUE, PROBS * 0.5, LABELS, "sums to"),
        (Y_TRUE, PROBS, ["a", "b", "b"], "duplicates"),
        (Y_TRUE, PROBS, [], "empty"),
        ("abca", PROBS, LABELS, "not one string"),
    ],
)
def test_input_errors(y_true: Any, probs: np.ndarray, labels: list[str], message: str) -> None:
    with pytest.raises(EvaluationInputError, match=message) as caught:
        evaluate(y_true, probs, labels, COSTS)
    assert isinstance(caught.value, ValueError)


# ---------------------------------------------------------------------------------------- presentation


def test_confusion_png_is_a_valid_png(report: EvaluationReport, tmp_path: Path) -> None:
    target = tmp_path / "plots" / "confusion.png"
    assert confusion_matrix_png(report, target, "challenger on test split") == target
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert [p.name for p in target.parent.iterdir()] == ["confusion.png"]  # no temp files left


def test_comparison_markdown_with_champion(report: EvaluationReport) -> None:
    # Always predicts b: a -> b twice (pair cost 4 each) + c -> b (missed c, 10) = 18 / 4 * 1000.
    champion = evaluate(Y_TRUE, np.array([[0.4, 0.6, 0.0]] * 4), LABELS, COSTS)
    markdown = comparison_markdown(report, champion)
    assert markdown.splitlines()[0] == "| metric | champion | challenger | delta |"
    assert "| accuracy | 0.250 | 0.750 | +0.500 |" in markdown
    assert "| expected cost / 1000 | 4500.00 | 1000.00 | -3500.00 |" in markdown
    assert "| ECE | 0.350 | 0.325 | -0.025 |" in markdown
    assert "| F1 c | 0.000 | 1.000 | +1.000 |" in markdown
    assert "macro-F1" in markdown


def test_comparison_markdown_without_champion(report: EvaluationReport) -> None:
    markdown = comparison_markdown(report, None)
    assert "| accuracy | — | 0.750 | — |" in markdown
    assert "| F1 a | — | 0.667 | — |" in markdown


def test_core_modules_import_neither_matplotlib_nor_dagster() -> None:
    code = (
        "import sys, modelops.core.evaluation.evaluate, modelops.core.evaluation.gate; "
        "print(sorted(m for m in ('matplotlib', 'dagster') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------- config loading


def test_default_config_loads_for_the_support_task() -> None:
    model = load_cost_model(DEFAULT_CONFIG, label_names=INTENTS)
    assert model.default_error_cost == 1.0 and model.correct_cost == 0.0
    assert model.missed_class_costs["fraud_report"] == 25.0
    assert model.missed_class_costs["account_access"] == 5.0
    assert model.cost("fraud_report", "product_question") == 30.0
    assert model.cost("fraud_report", "billing") == 25.0
    assert model.cost("billing", "shipping") == 1.0


def _write_config(tmp_path: Path, edit: Any) -> Path:
    document = yaml.safe_load(DEFAULT_CONFIG.read_text())
    edit(document)
    path = tmp_path / "evaluation.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_pairs_with_quoted_true_key_load(tmp_path: Path) -> None:
    path = _write_config(tmp_path, lambda d: d["cost_model"].update(
        pair_costs=[{"true": "refund", "predicted": "shipping", "cost": 7}]))
    assert "'true'" in path.read_text()
    assert load_cost_model(path).cost("refund", "shipping") == 7


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (lambda d: d["cost_model"].pop("correct_cost"), "cost_model", r"missing required key\(s\) \['correct_cost'\]"),
        (lambda d: d["cost_model"].pop("default_error_cost"), "cost_model", r"missing required key\(s\)"),
        (lambda d: d["cost_model"].update(default_eror_cost=1.0), "cost_model.default_eror_cost",
         r"unknown key; expected one of \['default_error_cost'"),
        (lambda d: d.pop("cost_model"), "cost_model", "missing"),
        (lambda d: d.update(costs={}), "costs",
         r"unknown key; expected one of \['cost_model', 'gate', 'abstention', 'serving', 'generation'\]"),
        (lambda d: d["cost_model"].update(default_error_cost="high"), "cost_model.default_error_cost", "valid number"),
        (lambda d: d["cost_model"].update(default_error_cost=True), "cost_model.default_error_cost", "valid number"),
        (lambda d: d["cost_model"].update(correct_cost=-1), "cost_model.correct_cost", "greater than or equal to 0"),
        (lambda d: d["cost_model"]["missed_class_costs"].update(fraud_report=-25),
         "cost_model.missed_class_costs.fraud_report", "greater than or equal to 0"),
        (lambda d: d["cost_model"].update(missed_class_costs=[1, 2]), "cost_model.missed_class_costs",
         "valid dictionary"),
        (lambda d: d["cost_model"].update(pair_costs={"a": 1}), "cost_model.pair_costs", "valid list"),
        (lambda d: d["cost_model"]["pair_costs"][0].pop("cost"), "cost_model.pair_costs[0].cost", "missing"),
        (lambda d: d["cost_model"]["pair_costs"][1].update(cost=-3), "cost_model.pair_costs[1].cost",
         "greater than or equal to 0"),
        (lambda d: d["cost_model"]["pair_costs"][0].update(weight=1), "cost_model.pair_costs[0].weight",
         r"unknown key; expected one of \['true', 'predicted', 'cost'\]"),
        (lambda d: d["cost_model"]["pair_costs"][0].update(predicted=False), "cost_model.pair_costs[0].predicted",
         "quote it in YAML"),
        (lambda d: d["cost_model"]["pair_costs"].append(dict(d["cost_model"]["pair_costs"][0])),
         "cost_model.pair_costs", r"\[9\] duplicate pair"),
        (lambda d: d["cost_model"]["pair_costs"][0].update(predicted="fraud_report"), "cost_model.pair_costs[0]",
         "correct_cost"),
    ],
)
def test_evaluation_policy_errors_name_the_file_and_the_key(tmp_path: Path, edit: Any, key: str,
                                                            message: str) -> None:
    path = _write_config(tmp_path, edit)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path, EvaluationPolicy)
    assert caught.value.field == key
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_unknown_label_is_reported_when_label_names_are_given(tmp_path: Path) -> None:
    path = _write_config(tmp_path, lambda d: d["cost_model"]["missed_class_costs"].update(fraud_reprot=25))
    assert load_cost_model(path).missed_class_costs["fraud_reprot"] == 25
    with pytest.raises(ConfigError, match="fraud_reprot"):
        load_cost_model(path, label_names=INTENTS)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_cost_model(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("cost_model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_cost_model(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_cost_model(scalar)


def test_cost_coverage_names_unpriced_and_unknown_labels(tmp_path: Path) -> None:
    model = load_cost_model(DEFAULT_CONFIG)
    coverage = cost_coverage(model, ["billing", "refund", "lost_card"], DEFAULT_CONFIG)
    assert coverage.unpriced == ["lost_card"]
    assert "fraud_report" in coverage.unknown and "billing" not in coverage.unknown
    assert "lost_card" in coverage.markdown() and "never apply" in coverage.markdown()
    assert cost_coverage(model, list(INTENTS), DEFAULT_CONFIG).unpriced == ["technical_issue"]  # default cost


def test_a_cost_model_naming_none_of_the_data_labels_is_refused_unless_allowed(tmp_path: Path) -> None:
    banking = ["lost_card", "card_arrival", "balance"]
    with pytest.raises(ConfigError, match="names none of the data's 3 labels.*allow_default_costs: true"):
        cost_coverage(load_cost_model(DEFAULT_CONFIG), banking, DEFAULT_CONFIG)
    allowed = _write_config(tmp_path, lambda d: d["cost_model"].update(allow_default_costs=True))
    coverage = cost_coverage(load_cost_model(allowed), banking, allowed)
    assert coverage.unpriced == sorted(banking)
    wrong = _write_config(tmp_path, lambda d: d["cost_model"].update(allow_default_costs="yes"))
    with pytest.raises(ConfigError, match="allow_default_costs: Input should be a valid boolean"):
        load_cost_model(wrong)
