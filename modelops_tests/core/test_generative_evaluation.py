"""A generative challenger evaluated end to end on real outputs: responses of the tiny causal LM's registered
versions, the generation gate (floors for the first model, the champion for the next), and the report in MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from modelops.core.evaluation.generative_evaluation import evaluate_generative_challenger
from modelops.core.registry.registry import ModelRegistry
from modelops.core.serving.generation import load_causal_lm
from modelops.core.training.base_model import load_base_model
from modelops.core.training.train import save_adapter
from modelops.core.training.training_config import TrainingConfig

POLICY = {
    "cost_model": {"default_error_cost": 1.0, "correct_cost": 0.0, "missed_class_costs": {"fraud_report": 25.0},
                   "pair_costs": []},
    "gate": {"min_eval_size": 20, "min_macro_f1": 0.0, "min_accuracy": 0.0, "min_class_f1": 0.0,
             "macro_f1_tolerance": 0.01, "max_cost_increase": 0.0, "max_class_f1_drop": 1.0},
    "generation": {"output": "json", "max_new_tokens": 32, "decision_field": "intent",
                   # an unparseable answer stalls the ticket: priced above any misrouting (a missed fraud report: 25)
                   "field_costs": {"order_number": 0.5}, "invalid_output_cost": 30.0, "min_valid_output": 0.8,
                   "min_exact_match": 0.0, "exact_match_tolerance": 0.01},
}


def _register(registry: ModelRegistry, adapter_dir: Path) -> str:
    with registry.run("train-full", {}) as run_id:
        pass
    return registry.register_adapter(run_id, adapter_dir, {})


def _untrained_adapter(base, folder: Path) -> Path:
    """A LoRA adapter that changes nothing (B = 0): the base's own, untrained answers."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(load_base_model(base), LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj"]))
    save_adapter(model, folder, [], base, TrainingConfig(), {})
    return folder


def test_a_generative_challenger_is_gated_on_its_outputs_and_reported(trained_extractor: dict, tmp_path: Path,
                                                                       fresh_mlflow_db) -> None:
    base, curated = trained_extractor["base"], pd.concat(trained_extractor["split"].values())
    registry = ModelRegistry(fresh_mlflow_db(tmp_path / "mlflow.db"), "ticket-extractor", tmp_path / "mlartifacts")
    policy = tmp_path / "evaluation.yaml"
    policy.write_text(yaml.safe_dump(POLICY))

    def load(version: str):
        return load_causal_lm(base, registry.download_adapter(version, tmp_path / "versions" / version))

    def evaluate(version: str):
        return evaluate_generative_challenger(registry, version, curated, policy, load, 128, {"origin": "test"})

    trained = _register(registry, trained_extractor["result"].adapter_dir)
    first = evaluate(trained)
    assert first.decision.passed and first.champion is None
    assert first.challenger.n == len(trained_extractor["split"]["test"]) and first.challenger.valid_output >= 0.8
    run = registry.client.get_run(first.mlflow_run_id)
    assert run.data.metrics["challenger_valid_output"] == first.challenger.valid_output
    assert run.data.tags["modelops.gate_passed"] == "True"
    assert registry.version_info(trained)["tags"]["gate_passed"] == "True"
    registry.promote(trained, "first model passed the gate")

    untrained = _register(registry, _untrained_adapter(base, tmp_path / "untrained"))
    second = evaluate(untrained)
    assert not second.decision.passed and second.champion_version == trained
    assert second.champion is not None
    assert second.champion.rows["response"].tolist() == first.challenger.rows["response"].tolist()  # greedy: same
    failed = {c.name for c in second.decision.checks if not c.passed}
    assert {"min_valid_output", "cost_vs_champion"} <= failed
    assert second.record()["passed"] is False and second.record()["champion_metrics"]["valid_output"] >= 0.8
    assert second.champion.rows["response"].iloc[0][:20] in second.examples  # the champion's answers side by side
    report = registry.client.download_artifacts(second.mlflow_run_id, "evaluation/report.md", str(tmp_path))
    assert "cost_vs_champion" in Path(report).read_text()
    assert registry.alias_version("champion") == trained
