"""One evaluation of a generative challenger against the champion on the frozen test split: each model's responses
(cut at the policy's max_new_tokens), scored under the generation policy, the gate's decision, and the report tracked
as an MLflow run (metrics, comparison, side-by-side examples) with the decision tagged on the version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.core.config_files import load_config
from modelops.core.evaluation.evaluation_policy import EvaluationPolicy
from modelops.core.evaluation.gate import GateDecision
from modelops.core.evaluation.generation_evaluation import (
    GenerationReport,
    comparison_markdown,
    evaluate_generations,
    side_by_side,
)
from modelops.core.evaluation.generation_gate import decide_generation
from modelops.core.tags import MlflowTag

if TYPE_CHECKING:
    import pandas as pd

    from modelops.core.registry.registry import ModelRegistry

GenerativeModel = tuple[Any, Any]  # (causal LM with its adapter, tokenizer), as serving.generation.load_causal_lm


@dataclass(frozen=True)
class GenerativeEvaluation:
    """What an evaluation of a generative challenger found and decided, and where its report lives."""

    challenger_version: str
    champion_version: str | None
    challenger: GenerationReport
    champion: GenerationReport | None
    decision: GateDecision
    comparison: str  # challenger vs champion, markdown
    examples: str  # side by side, markdown
    mlflow_run_id: str

    def record(self) -> dict[str, Any]:
        """The evaluation record the champion asset and the operators' tools read."""
        return {"challenger_version": self.challenger_version, "champion_version": self.champion_version,
                "passed": self.decision.passed, "reasons": self.decision.reasons,
                "checks": [c.__dict__ for c in self.decision.checks], "mlflow_run_id": self.mlflow_run_id,
                "challenger_metrics": self.challenger.metrics(),
                "champion_metrics": self.champion.metrics() if self.champion else None,
                "gate_markdown": self.decision.markdown()}


def evaluate_generative_challenger(registry: ModelRegistry, challenger_version: str, curated: pd.DataFrame,
                                   policy_path: Path, load_model: Callable[[str], GenerativeModel],
                                   max_prompt_tokens: int, run_tags: dict[str, str]) -> GenerativeEvaluation:
    """Generate with `challenger_version` (and the champion, when there is another) for `curated`'s test prompts,
    score both under the evaluation policy at `policy_path`, apply the gate, log the report as an MLflow run tagged
    `run_tags` and tag the version with the decision."""
    from modelops.core.serving.generation import generate

    policy = load_config(policy_path, EvaluationPolicy)
    generation = policy.generation
    test = curated[curated["split"] == "test"]
    prompts, references = test["prompt"].tolist(), test["response"].tolist()
    champion_version = registry.alias_version("champion")
    versions = {"challenger": challenger_version}
    if champion_version is not None and champion_version != challenger_version:
        versions["champion"] = champion_version
    reports = {}
    for role, version in versions.items():
        model, tokenizer = load_model(version)
        responses = [g.text for g in generate(model, tokenizer, prompts, generation.max_new_tokens,
                                              max_prompt_tokens)]
        reports[role] = evaluate_generations(prompts, references, responses, generation, policy.cost_model)
    challenger, champion = reports["challenger"], reports.get("champion")
    decision = decide_generation(challenger, champion, policy.gate, generation)
    comparison, examples = comparison_markdown(challenger, champion), side_by_side(challenger, champion)
    tags = {**run_tags, MlflowTag.CHALLENGER_VERSION: challenger_version,
            MlflowTag.CHAMPION_VERSION: str(champion_version)}
    with registry.run(f"evaluate-v{challenger_version}", tags) as run_id:
        for role, report in reports.items():
            registry.log_metrics(run_id, report.metrics(prefix=f"{role}_"))
        registry.log_text(run_id, f"# Evaluation of {registry.model_name} v{challenger_version}\n\n{comparison}\n\n"
                                  f"## Gate\n\n{decision.markdown()}\n\n## Examples (test split)\n\n{examples}\n",
                          "evaluation/report.md")
        registry.set_tags(run_id, {MlflowTag.GATE_PASSED: str(decision.passed)})
    registry.set_version_tags(challenger_version, {"gate_passed": str(decision.passed)})
    return GenerativeEvaluation(challenger_version, champion_version, challenger, champion, decision, comparison,
                                examples, run_id)
