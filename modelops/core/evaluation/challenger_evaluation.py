"""One evaluation of a challenger against the champion: both on the frozen test split and on recent labelled
traffic, business cost, an abstention threshold where the policy prices a fallback, the gate's decision, and the
report tracked as an MLflow run (metrics, confusion matrices, markdown and HTML) with the decision tagged on the
version."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.core.config_files import load_config
from modelops.core.evaluation.abstention import ServedAbstention, abstention_markdown, fit_abstention
from modelops.core.evaluation.evaluate import (
    CostCoverage,
    EvaluationReport,
    comparison_markdown,
    confusion_matrix_png,
    cost_coverage,
    evaluate,
)
from modelops.core.evaluation.evaluation_policy import AbstentionPolicy, CostModel, EvaluationPolicy
from modelops.core.evaluation.gate import GateDecision, decide
from modelops.core.evaluation.serving_variants import ServingChoice, choose_serving_variant
from modelops.core.markdown import html_report
from modelops.core.tags import MlflowTag

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.serving.predictor import AdapterClassifier


class ChallengerEvaluationError(ValueError):
    """The challenger cannot be evaluated as the data and policy stand; the message says why and what to change."""


@dataclass(frozen=True)
class ChallengerEvaluation:
    """What an evaluation found and decided, and where its report lives."""

    challenger_version: str
    champion_version: str | None
    challenger: EvaluationReport
    champion: EvaluationReport | None
    decision: GateDecision
    coverage: CostCoverage
    comparison: str  # challenger vs champion, markdown
    abstention_table: str  # markdown, empty without an abstention policy
    confusion_png: Path  # the challenger's confusion matrix
    mlflow_run_id: str
    test_rows: int
    recent_rows: int  # test rows that came from labelled production traffic
    recent_challenger_macro_f1: float | None
    warnings: list[str]
    serving: ServingChoice | None  # which variant serves the challenger; None when the gate refused it

    def record(self) -> dict[str, Any]:
        """The evaluation record the champion asset and the operators' tools read."""
        challenger, champion = self.challenger, self.champion
        return {"challenger_version": self.challenger_version, "champion_version": self.champion_version,
                "passed": self.decision.passed, "reasons": self.decision.reasons,
                "checks": [c.__dict__ for c in self.decision.checks], "mlflow_run_id": self.mlflow_run_id,
                "challenger_metrics": challenger.metrics(),
                "champion_metrics": champion.metrics() if champion else None,
                "abstention": challenger.abstention.to_dict() if challenger.abstention else None,
                "gate_markdown": self.decision.markdown(),
                "serving_variant": self.serving.variant if self.serving is not None else None,
                "serving_variant_reason": self.serving.reason if self.serving is not None else None}


def _abstention(classifier: AdapterClassifier, validation: pd.DataFrame, test: pd.DataFrame, test_predictions,
                policy: AbstentionPolicy, cost_model: CostModel):
    """The classifier's abstention threshold, chosen on the validation rows of labels it knows, reported on test."""
    known = validation[validation["label"].isin(classifier.label_names)]
    if known.empty:
        raise ChallengerEvaluationError("The abstention threshold is chosen on the validation split, which has no rows "
                                        "of the model's labels; add validation data or remove the abstention section.")
    found = classifier.predict(known["text"].tolist())
    return fit_abstention((known["label"].tolist(), found.labels, found.confidences),
                          (test["label"].tolist(), test_predictions.labels, test_predictions.confidences),
                          policy, cost_model)


def evaluate_challenger(registry: ModelRegistry, challenger_version: str, curated: pd.DataFrame, policy_path: Path,
                        load_classifier: Callable[[str], AdapterClassifier], out_dir: Path,
                        run_tags: dict[str, str]) -> ChallengerEvaluation:
    """Evaluate `challenger_version` (and the champion, when there is another) on `curated`'s test split under the
    evaluation policy at `policy_path`; log the report as an MLflow run tagged `run_tags` and tag the version with
    the gate's decision and its abstention threshold."""
    policy = load_config(policy_path, EvaluationPolicy)
    cost_model, rules, abstention = policy.cost_model, policy.gate, policy.abstention
    champion_version = registry.alias_version("champion")
    coverage = cost_coverage(cost_model, sorted(curated["label"].unique()), policy_path)
    warnings = [f"cost model vs data labels: {coverage.markdown()}"] if coverage.unpriced or coverage.unknown else []
    test, validation = curated[curated["split"] == "test"], curated[curated["split"] == "validation"]
    from_feedback = test["source"].str.startswith("feedback").to_numpy()  # the challenger's recent-traffic rows
    versions = {"challenger": challenger_version}
    if champion_version is not None and champion_version != challenger_version:
        versions["champion"] = champion_version
    reports: dict[str, EvaluationReport] = {}
    recent: dict[str, EvaluationReport] = {}
    loaded: dict[str, AdapterClassifier] = {}
    probabilities: dict[str, np.ndarray] = {}
    rows = test  # the rows the champion is evaluated on: all, or those of its labels when the challenger adds some
    for role, version in versions.items():
        classifier = loaded[role] = load_classifier(version)
        unknown = set(rows["label"]) - set(classifier.label_names)
        if unknown and role == "champion" and "challenger" in reports:
            rows = test[test["label"].isin(classifier.label_names)]
            warnings.append(f"champion v{version} does not know the new labels {sorted(unknown)}: the challenger is "
                            f"compared with it on the {len(rows)} test rows of its labels; the new labels are held to "
                            "the gate's floors")
        elif unknown:
            warnings.append(f"{role} v{version} does not know labels {sorted(unknown)}; not evaluated")
            continue
        predictions = classifier.predict(rows["text"].tolist())
        probabilities[role] = predictions.probabilities
        reports[role] = evaluate(rows["label"].tolist(), predictions.probabilities, classifier.label_names, cost_model)
        if abstention is not None:
            abstention.check_not_a_model_label(classifier.label_names, policy_path)
            reports[role] = dataclasses.replace(reports[role], abstention=_abstention(
                classifier, validation, rows, predictions, abstention, cost_model))
        feedback = rows["source"].str.startswith("feedback").to_numpy()
        if feedback.any():
            recent[role] = evaluate(rows["label"][feedback].tolist(), predictions.probabilities[feedback],
                                    classifier.label_names, cost_model)
    if "challenger" not in reports:
        raise ChallengerEvaluationError("The challenger cannot be evaluated on the test split (label set mismatch).")
    challenger, champion = reports["challenger"], reports.get("champion")
    compared = None
    if champion is not None and len(rows) < len(test):  # new labels: both on the champion's rows, without fallback
        champion = dataclasses.replace(champion, abstention=None)
        compared = evaluate(rows["label"].tolist(), probabilities["challenger"][test.index.isin(rows.index)],
                            challenger.label_names, cost_model)
    decision = decide(challenger, champion, rules, compared)
    serving = None if not decision.passed else choose_serving_variant(
        loaded["challenger"], test["text"].tolist(), test["label"].tolist(), challenger, cost_model, policy.serving,
        rules, out_dir / "serving")
    abstained = {role: report.abstention for role, report in reports.items() if report.abstention is not None}
    abstention_table = abstention_markdown(abstained) if abstained else ""
    comparison = comparison_markdown(challenger, champion)
    out_dir.mkdir(parents=True, exist_ok=True)
    with registry.run(f"evaluate-v{challenger_version}", {**run_tags, MlflowTag.CHALLENGER_VERSION: challenger_version,
                                                          MlflowTag.CHAMPION_VERSION: str(champion_version)}) as run_id:
        pngs = []
        for role, report in reports.items():
            registry.log_metrics(run_id, report.metrics(prefix=f"{role}_"))
            pngs.append(confusion_matrix_png(report, out_dir / f"confusion_{role}.png", f"{role} v{versions[role]}"))
            registry.log_artifact(run_id, pngs[-1], "evaluation")
        for role, report in recent.items():
            registry.log_metrics(run_id, report.metrics(prefix=f"recent_traffic_{role}_"))
        if serving is not None:
            serving.record(registry, challenger_version, run_id)
        serving_md = serving.markdown(challenger) if serving is not None else ""
        report_md = _report_markdown(registry.model_name, challenger_version, comparison, decision, abstention,
                                     abstention_table, coverage, challenger, pngs, serving_md)
        registry.log_text(run_id, report_md, "evaluation/report.md")
        registry.log_text(run_id, html_report(f"Evaluation of v{challenger_version}",
                                              report_md.split("## Confusion")[0], pngs), "evaluation/report.html")
        registry.set_tags(run_id, {MlflowTag.GATE_PASSED: str(decision.passed)})
    registry.set_version_tags(challenger_version, {"gate_passed": str(decision.passed)})
    if challenger.abstention is not None:
        registry.set_version_tags(challenger_version, ServedAbstention(challenger.abstention.threshold,
                                                                      challenger.abstention.fallback_label).tags())
    return ChallengerEvaluation(challenger_version, champion_version, challenger, champion, decision, coverage,
                                comparison, abstention_table, out_dir / "confusion_challenger.png", run_id, len(test),
                                int(from_feedback.sum()),
                                recent["challenger"].macro_f1 if "challenger" in recent else None, warnings, serving)


def _report_markdown(model_name: str, version: str, comparison: str, decision: GateDecision,
                     abstention: AbstentionPolicy | None, abstention_table: str, coverage: CostCoverage,
                     challenger: EvaluationReport, pngs: list[Path], serving_md: str) -> str:
    abstention_section = (f"## Abstention (fallback '{abstention.fallback_label}' at {abstention.fallback_cost} per "
                          f"request; thresholds chosen on the validation split, shown on test)\n\n"
                          f"{abstention_table}\n\n") if abstention is not None and abstention_table else ""
    serving_section = f"## Serving variant\n\n{serving_md}\n\n" if serving_md else ""
    return (f"# Evaluation of {model_name} v{version}\n\n{comparison}\n\n## Gate\n\n{decision.markdown()}\n\n"
            f"{serving_section}{abstention_section}## Cost model and the data's labels\n\n{coverage.markdown()}\n\n"
            f"## Per class (challenger, test split)\n\n{challenger.per_class_markdown()}\n\n## Confusion matrices\n\n"
            + "\n".join(f"![{png.stem}]({png.name})" for png in pngs) + "\n")
