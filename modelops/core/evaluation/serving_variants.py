"""Which model serves a challenger the gate passed: its ONNX variants are built and evaluated on the same test split
as the PyTorch model, and the fastest one the owner's serving policy accepts is chosen (PyTorch when none is)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.core.evaluation.evaluate import EvaluationReport, evaluate
from modelops.core.evaluation.gate import EPSILON, GateCheck, class_f1_check
from modelops.core.markdown import markdown_table
from modelops.core.serving.onnx_variants import PYTORCH, VARIANT_FILES, OnnxClassifier, export_variants, file_sha256
from modelops.core.tags import VersionTag

if TYPE_CHECKING:
    from modelops.core.evaluation.evaluation_policy import CostModel, GateRules, ServingPolicy
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.serving.predictor import AdapterClassifier

log = logging.getLogger(__name__)

VARIANT_ARTIFACT_DIR = "serving"  # where the variant files go in the evaluation's MLflow run


@dataclass(frozen=True)
class VariantResult:
    """One variant's evaluation against the PyTorch model, or why it could not be evaluated."""

    variant: str
    report: EvaluationReport | None
    checks: list[GateCheck] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.report is not None and all(check.passed for check in self.checks)


@dataclass(frozen=True)
class ServingChoice:
    """The variant that serves, why, every variant's result, and the files of the variants that were built."""

    variant: str
    reason: str
    results: list[VariantResult]
    files: dict[str, Path]

    def markdown(self, reference: EvaluationReport) -> str:
        rows = [[PYTORCH, f"{reference.macro_f1:.4f}", "-", f"{reference.expected_cost_per_1000:.2f}", "reference",
                 "the gate's evaluation"]]
        for result in self.results:
            report = result.report
            rows.append([result.variant, f"{report.macro_f1:.4f}" if report else "-",
                         f"{report.macro_f1 - reference.macro_f1:+.4f}" if report else "-",
                         f"{report.expected_cost_per_1000:.2f}" if report else "-",
                         "passed" if result.passed else "refused",
                         result.error or "; ".join(check.detail for check in result.checks)])
        table = markdown_table(["variant", "macro-F1", "vs PyTorch", "cost/1000", "verdict", "checks"], rows)
        return f"**Serving: {self.variant}** ({self.reason})\n\n{table}"

    @property
    def passed_files(self) -> dict[str, Path]:
        """The files of the variants that passed, fastest first: what the server may load."""
        return {result.variant: self.files[result.variant] for result in self.results if result.passed}

    def record(self, registry: ModelRegistry, version: str, run_id: str) -> None:
        """Log the passed variants' files to run `run_id` and tag `version` with the choice (what the server reads)."""
        for path in self.passed_files.values():
            registry.log_artifact(run_id, path, VARIANT_ARTIFACT_DIR)
        registry.set_version_tags(version, self.tags(run_id))

    def tags(self, run_id: str) -> dict[str, str]:
        """Version tags the server reads: the variant, why, and the passed variants' files (in run `run_id`, where
        they are logged under VARIANT_ARTIFACT_DIR) with their sha256."""
        tags = {VersionTag.SERVING_VARIANT: self.variant, VersionTag.SERVING_VARIANT_REASON: self.reason[:4000]}
        if self.passed_files:
            tags[VersionTag.SERVING_VARIANT_RUN_ID] = run_id
            tags[VersionTag.SERVING_VARIANT_FILES] = json.dumps({
                variant: {"file": f"{VARIANT_ARTIFACT_DIR}/{path.name}", "sha256": file_sha256(path)}
                for variant, path in self.passed_files.items()})
        return tags


def variant_checks(variant: EvaluationReport, reference: EvaluationReport, policy: ServingPolicy,
                   rules: GateRules) -> list[GateCheck]:
    """A variant stays within the policy's macro-F1 drop and the gate's per-class drop of the PyTorch model."""
    drop, allowed = reference.macro_f1 - variant.macro_f1, policy.max_macro_f1_drop
    passed = drop <= allowed + EPSILON
    return [GateCheck("macro_f1_vs_pytorch", passed, f"macro-F1 drop {drop:.4f} {'<=' if passed else '>'} allowed "
                                                     f"{allowed:.4f}"),
            class_f1_check(variant, reference, rules)]


def choose_serving_variant(classifier: AdapterClassifier, test_texts: list[str], test_labels: list[str],
                           reference: EvaluationReport, cost_model: CostModel, policy: ServingPolicy,
                           rules: GateRules, out_dir: Path) -> ServingChoice:
    """Build the policy's variants of `classifier` in `out_dir`, evaluate each on the test rows against `reference`
    (the PyTorch model's report on the same rows) and choose the fastest that passes."""
    wanted = [variant for variant in VARIANT_FILES if variant in policy.variants]
    if not wanted:
        return ServingChoice(PYTORCH, "the serving policy lists no optimised variant", [], {})
    try:
        files = export_variants(classifier, out_dir)
    except Exception as error:  # an architecture the exporter cannot trace: serve PyTorch, say why
        log.exception("Exporting the serving variants failed; PyTorch serves")
        return ServingChoice(PYTORCH, f"export to ONNX failed: {type(error).__name__}: {error}", [], {})
    results = [_evaluate_variant(classifier, variant, files[variant], test_texts, test_labels, reference, cost_model,
                                 policy, rules) for variant in wanted]
    chosen = next((result for result in results if result.passed), None)
    if chosen is None:
        return ServingChoice(PYTORCH, "no optimised variant stayed within the serving policy", results, files)
    refused = [result.variant for result in results[: results.index(chosen)]]
    reason = (f"fastest variant within the serving policy (macro-F1 {chosen.report.macro_f1:.4f} vs PyTorch "  # type: ignore[union-attr]
              f"{reference.macro_f1:.4f})" + (f"; refused: {', '.join(refused)}" if refused else ""))
    return ServingChoice(chosen.variant, reason, results, files)


def _evaluate_variant(classifier: AdapterClassifier, variant: str, model_file: Path, texts: list[str],
                      labels: list[str], reference: EvaluationReport, cost_model: CostModel, policy: ServingPolicy,
                      rules: GateRules) -> VariantResult:
    try:
        predictions = OnnxClassifier.of(classifier, model_file).predict(texts)
    except Exception as error:
        log.exception("Evaluating serving variant %s failed", variant)
        return VariantResult(variant, None, error=f"{type(error).__name__}: {error}")
    report = evaluate(labels, predictions.probabilities, classifier.label_names, cost_model)
    return VariantResult(variant, report, variant_checks(report, reference, policy, rules))
