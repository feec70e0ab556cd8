"""POST /generate on the tiny causal LM with its trained adapter (conftest's trained_extractor): answers equal to
`generate` alone, concurrent requests batched, a request's own max_new_tokens, capture of every response, clear
refusals of bad requests, and a timeout."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from starlette.testclient import TestClient

from modelops.core.monitoring.traffic import list_batches
from modelops.core.monitoring.traffic_writer import GENERATION_SCHEMA, TrafficWriter
from modelops.core.serving.generation import Generation, ServedGenerator, generate, load_causal_lm
from modelops.service.batcher import LoadedModel
from modelops.service.requests import ServingConfig
from modelops.service.serving import Endpoint, create_app

MAX_NEW_TOKENS = 32
MAX_PROMPT_TOKENS = 128


class CountingGenerator:
    """The served generator, recording how many prompts each generate call got; can be slowed down."""

    def __init__(self, inner: ServedGenerator) -> None:
        self.inner, self.model, self.tokenizer = inner, inner.model, inner.tokenizer
        self.max_new_tokens = inner.max_new_tokens
        self.calls: list[int] = []
        self.delay = 0.0

    def generate(self, prompts: list[str], limits: list[int]) -> list[Generation]:
        self.calls.append(len(prompts))
        time.sleep(self.delay)
        return self.inner.generate(prompts, limits)


@pytest.fixture()
def generator(trained_extractor) -> CountingGenerator:
    model, tokenizer = load_causal_lm(trained_extractor["base"], trained_extractor["result"].adapter_dir)
    return CountingGenerator(ServedGenerator(model, tokenizer, MAX_NEW_TOKENS, MAX_PROMPT_TOKENS))


@pytest.fixture(scope="module")
def prompts(trained_extractor) -> list[str]:
    return trained_extractor["split"]["test"]["prompt"].head(8).tolist()


def _client(generator: CountingGenerator, traffic: Path, **config) -> TestClient:
    endpoint = Endpoint(lambda: LoadedModel("ticket-extractor", "3", "sha", generator), lambda: "3",
                        TrafficWriter(traffic, max_rows=1000, schema=GENERATION_SCHEMA), generative=True)
    return TestClient(create_app({"extractor": endpoint}, ServingConfig(**config)))


def test_responses_are_those_of_generate_and_every_one_is_captured(generator, prompts, tmp_path):
    alone = generate(generator.model, generator.tokenizer, prompts, MAX_NEW_TOKENS, MAX_PROMPT_TOKENS)
    with _client(generator, tmp_path) as client:
        one = client.post("/generate/extractor", json={"prompt": prompts[0]})
        many = client.post("/generate", json={"prompts": prompts[1:4]})
        short = client.post("/generate", json={"prompt": prompts[0], "max_new_tokens": 3})
    assert one.status_code == many.status_code == short.status_code == 200
    answered = one.json()["responses"] + many.json()["responses"]
    assert [r["response"] for r in answered] == [g.text for g in alone[:4]]
    assert [r["response_tokens"] for r in answered] == [g.response_tokens for g in alone[:4]]
    assert one.json()["model_version"] == "3" and answered[0]["mean_logprob"] <= 0.0
    cut = short.json()["responses"][0]
    assert cut["response_tokens"] == 3 and not cut["finished"]
    captured = pd.concat([pd.read_parquet(tmp_path / f"{b}.parquet") for b in list_batches(tmp_path)])
    assert list(captured.columns) == GENERATION_SCHEMA.names and len(captured) == 5
    assert captured["prompt"].tolist()[:4] == prompts[:4]
    assert captured["response"].tolist()[:4] == [g.text for g in alone[:4]]
    assert (captured["latency_ms"] > 0).all() and (captured["prompt_tokens"] > 0).all()
    assert {len(e) for e in captured["embedding"]} == {generator.model.get_input_embeddings().embedding_dim}


def test_concurrent_requests_share_generate_calls_and_get_their_own_answers(generator, prompts, tmp_path):
    alone = {g_prompt: g.text for g_prompt, g in zip(prompts, generate(
        generator.model, generator.tokenizer, prompts, MAX_NEW_TOKENS, MAX_PROMPT_TOKENS), strict=True)}
    generator.delay = 0.05  # a first call in flight lets the others queue behind it
    answers: dict[str, str] = {}
    with _client(generator, tmp_path, micro_batch_wait_ms=20) as client:
        def ask(prompt: str) -> None:
            answers[prompt] = client.post("/generate", json={"prompt": prompt}).json()["responses"][0]["response"]

        threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == alone
    assert sum(generator.calls) == len(prompts) and max(generator.calls) > 1  # batched, none lost


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"prompt": ""}, 422, "prompt #0 is empty"),
    ({"text": "a ticket"}, 422, "Unknown field(s) ['text']; send only 'prompt' or 'prompts' and 'max_new_tokens'"),
    ({"prompt": "a ticket", "max_new_tokens": MAX_NEW_TOKENS + 1}, 422, f"from 1 to {MAX_NEW_TOKENS}, got 33"),
    ({"prompt": "a ticket", "max_new_tokens": True}, 422, "'max_new_tokens' must be an integer"),
    ({"prompts": []}, 422, "'prompts' is empty; send at least one prompt"),
])
def test_bad_requests_are_refused_and_nothing_is_captured(generator, tmp_path, body, status, message):
    with _client(generator, tmp_path) as client:
        response = client.post("/generate", json=body)
    assert response.status_code == status and message in response.json()["error"]
    assert list_batches(tmp_path) == []


def test_a_generative_customisation_is_not_served_at_predict(generator, tmp_path):
    with _client(generator, tmp_path) as client:
        response = client.post("/predict/extractor", json={"text": "a ticket"})
    assert response.status_code == 404
    assert response.json()["error"] == "extractor is served at POST /generate/extractor, not /predict"


def test_responses_slower_than_the_timeout_get_504(generator, prompts, tmp_path):
    generator.delay = 0.5
    with _client(generator, tmp_path, generation_timeout_seconds=0.1) as client:
        response = client.post("/generate", json={"prompt": prompts[0]})
    assert response.status_code == 504 and "No response within 0.1 s" in response.json()["error"]
