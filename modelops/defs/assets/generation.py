"""The evaluation and promotion steps of a causal-lm customisation (the evaluation and champion assets call them):
challenger and champion generate for the test prompts, their responses are scored under the owner's generation policy
and gated, and the operator sees metrics, the gate's table and the two models' answers side by side; a promoted
champion's generations for the held-out prompts become its drift reference."""

# No `from __future__ import annotations` here, as in the other asset modules.

import time
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from modelops.defs.assets.data import read_curated
from modelops.defs.resources import DataLake, MlflowRegistry, Policies

if TYPE_CHECKING:
    from modelops.core.evaluation.evaluation_policy import GenerationPolicy
    from modelops.core.evaluation.generative_evaluation import GenerativeEvaluation
    from modelops.core.registry.promotion import Promotion
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.training.base_model import BaseModelInfo


def evaluate_generative(context: dg.AssetExecutionContext, lake: DataLake, store: MlflowRegistry,
                        base: "BaseModelInfo", policies: Policies, max_prompt_tokens: int) -> dg.MaterializeResult:
    """Evaluate the newest adapter (lora_adapter's record) against the champion; prompts longer than
    `max_prompt_tokens` (the training max_length) keep their end."""
    from modelops.core.config_files import ConfigError
    from modelops.core.evaluation.evaluate import EvaluationInputError
    from modelops.core.evaluation.generative_evaluation import evaluate_generative_challenger

    registry = store.registry()
    version = lake.read_record("lora_adapter")["version"]
    curated, _ = read_curated(lake)
    try:
        found = evaluate_generative_challenger(registry, version, curated, Path(policies.evaluation_config),
                                               lambda loaded: _load(registry, lake, base, loaded), max_prompt_tokens,
                                               store.dagster_run_tags(context.run_id))
    except (ConfigError, EvaluationInputError) as error:
        raise dg.Failure(str(error)) from error
    lake.write_record("evaluation", {**found.record(), "evaluated_at": time.time()})
    return dg.MaterializeResult(metadata=_metadata(found, registry.run_url(found.mlflow_run_id)))


def promote_generative_champion(lake: DataLake, registry: "ModelRegistry", evaluation: dict, base: "BaseModelInfo",
                                policies: Policies, max_prompt_tokens: int) -> "Promotion":
    """Promote the challenger of the `evaluation` record if the gate passed it (PromotionRefused otherwise), its drift
    reference generated for the curated set's held-out prompts as the server would answer them."""
    from modelops.core.config_files import load_config
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.core.registry.promotion import promote_generative
    from modelops.core.serving.generation import generate

    generation = _generation(policies)

    def generate_for(version: str, prompts: list[str]):
        model, tokenizer = _load(registry, lake, base, version)
        return generate(model, tokenizer, prompts, generation.max_new_tokens, max_prompt_tokens, embed=True)

    return promote_generative(registry, evaluation, read_curated(lake)[0], generate_for, lake.settings.reference_dir,
                              load_config(Path(policies.drift_config), DriftConfig), generation)


def generation_policy(lake: DataLake, policies: Policies) -> "GenerationPolicy | None":
    """How a causal-lm customisation's responses are read (as traffic, for drift); None for a classifier."""
    return _generation(policies) if lake.generative else None


def _generation(policies: Policies) -> "GenerationPolicy":
    """The `generation:` section of the customisation's evaluation policy."""
    from modelops.core.config_files import load_config
    from modelops.core.evaluation.evaluation_policy import EvaluationPolicy

    return load_config(Path(policies.evaluation_config), EvaluationPolicy).generation


def _load(registry: "ModelRegistry", lake: DataLake, base: "BaseModelInfo", version: str) -> tuple:
    """A registered version's adapter (downloaded under the lake's adapters/) on the causal-LM base, and its
    tokenizer."""
    from modelops.core.serving.generation import load_causal_lm

    return load_causal_lm(base, registry.download_adapter(version, lake.settings.adapters_dir / f"registry-v{version}"))


def _metadata(found: "GenerativeEvaluation", run_url: str) -> dict:
    """Versions, the challenger's headline metrics, the comparison, the gate and examples side by side."""
    challenger = found.challenger
    metadata: dict[str, dg.RawMetadataValue] = {
        "challenger_version": found.challenger_version, "champion_version": str(found.champion_version),
        "gate_passed": found.decision.passed, "mlflow_run": dg.MetadataValue.url(run_url), "test_rows": challenger.n,
        "challenger_exact_match": challenger.exact_match, "challenger_valid_output": challenger.valid_output,
        "challenger_cost_per_1000": challenger.cost_per_1000,
        "comparison": dg.MetadataValue.md(found.comparison), "gate": dg.MetadataValue.md(found.decision.markdown()),
        "examples": dg.MetadataValue.md(found.examples)}
    if challenger.decision is not None:
        metadata["challenger_decision_macro_f1"] = challenger.decision.macro_f1
    return metadata
