"""Generation with a real causal LM (the tiny Llama of the `trained_extractor` fixture) whose adapter modelops trained
on the built-in ticket -> JSON task: responses, batching, limits, and the generation scores on real outputs."""

from __future__ import annotations

import pytest

from modelops.core.evaluation.evaluation_policy import CostModel, GenerationPolicy
from modelops.core.evaluation.generation_evaluation import GenerationReport, evaluate_generations
from modelops.core.serving.generation import GenerationRequestError, generate, load_causal_lm
from modelops.core.training.base_model import load_base_model, load_tokenizer

POLICY = GenerationPolicy(output="json", max_new_tokens=32, decision_field="intent",
                          field_costs={"order_number": 0.5}, invalid_output_cost=2.0)
COSTS = CostModel(default_error_cost=1.0)


def _scores(model, tokenizer, test) -> GenerationReport:
    prompts = test["prompt"].tolist()
    texts = [g.text for g in generate(model, tokenizer, prompts, POLICY.max_new_tokens, 128, batch_size=16)]
    return evaluate_generations(prompts, test["response"].tolist(), texts, POLICY, COSTS)


def test_the_trained_adapter_answers_in_the_tasks_format(trained_extractor: dict):
    losses = [h["val_loss"] for h in trained_extractor["result"].history]
    assert losses[-1] < losses[0] * 0.8
    model, tokenizer = load_causal_lm(trained_extractor["base"], trained_extractor["result"].adapter_dir)
    after = _scores(model, tokenizer, trained_extractor["split"]["test"])
    before = _scores(load_base_model(trained_extractor["base"]), tokenizer, trained_extractor["split"]["test"])
    assert before.valid_output == 0.0
    assert after.valid_output > 0.5 and after.field_accuracy["intent"] > before.field_accuracy["intent"]
    assert after.cost_per_1000 < before.cost_per_1000


def test_a_prompt_gets_the_same_response_alone_or_in_a_batch(trained_extractor: dict):
    model, tokenizer = load_causal_lm(trained_extractor["base"], trained_extractor["result"].adapter_dir)
    prompts = trained_extractor["split"]["test"]["prompt"].tolist()[:6]
    batched = generate(model, tokenizer, prompts, 24, 128, batch_size=6)
    alone = [generate(model, tokenizer, [p], 24, 128)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.response_tokens for g in batched] == [g.response_tokens for g in alone]
    assert [g.mean_logprob for g in batched] == pytest.approx([g.mean_logprob for g in alone], abs=1e-4)


def test_limits_are_kept_and_bad_requests_refused(trained_extractor: dict):
    model, tokenizer = load_causal_lm(trained_extractor["base"], trained_extractor["result"].adapter_dir)
    prompt = trained_extractor["split"]["test"]["prompt"].iloc[0]
    (cut,) = generate(model, tokenizer, [prompt], 3, 128)
    assert cut.response_tokens == 3 and not cut.finished and cut.mean_logprob <= 0.0
    (end_only,) = generate(model, tokenizer, [prompt], 8, 16)
    assert end_only.prompt_tokens == 16 and end_only.response_tokens <= 8
    (full,) = generate(model, tokenizer, [prompt], 64, 128)
    assert full.finished and full.response_tokens < 64
    with pytest.raises(GenerationRequestError, match="at least 1"):
        generate(model, tokenizer, [prompt], 0, 16)
    with pytest.raises(GenerationRequestError, match="at least one token"):
        generate(model, tokenizer, [""], 8, 16)
    assert load_tokenizer(trained_extractor["base"]).decode(tokenizer(prompt)["input_ids"]) == prompt  # byte-level BPE
