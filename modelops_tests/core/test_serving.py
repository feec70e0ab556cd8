"""The prediction service on the real MiniLM adapter: validation, capture, micro-batching and hot reload."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from modelops.core.evaluation.abstention import ServedAbstention
from modelops.core.monitoring.traffic import list_batches, read_batches
from modelops.core.monitoring.traffic_writer import TrafficWriter
from modelops.core.serving.predictor import AdapterClassifier, Predictions, length_buckets
from modelops.service.batcher import LoadedModel
from modelops.service.requests import ServingConfig
from modelops.service.serving import Endpoint, create_app
from modelops_tests.helpers import LABELS

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def classifier(base_info, untrained_adapter_dir) -> AdapterClassifier:
    return AdapterClassifier(base_info, untrained_adapter_dir)


class CountingPredictor:
    """The real classifier, recording how many texts each predict call got; can be told to fail."""

    def __init__(self, inner: AdapterClassifier) -> None:
        self.inner = inner
        self.batch_sizes: list[int] = []
        self.fail = False
        self._lock = threading.Lock()

    def predict(self, texts: list[str]) -> Predictions:
        with self._lock:
            self.batch_sizes.append(len(texts))
        if self.fail:
            raise RuntimeError("model exploded")
        return self.inner.predict(texts)


@dataclass
class Harness:
    """An app wired to a real predictor, a controllable champion version and loader, and a traffic folder."""

    traffic_dir: Path
    predictor: CountingPredictor
    base_sha256: str
    version: str = "1"
    load_calls: int = 0
    load_failures: int = 0
    loader_error: Exception | None = None
    fail_first_loads: int = 0
    load_delay: float = 0.0
    probe_error: Exception | None = None
    abstention: ServedAbstention | None = None
    app: Any = field(default=None)

    def probe(self) -> str:
        if self.probe_error is not None:
            raise self.probe_error
        return self.version

    def load(self) -> LoadedModel:
        self.load_calls += 1
        time.sleep(self.load_delay)
        if self.loader_error is not None or self.load_calls <= self.fail_first_loads:
            self.load_failures += 1
            raise self.loader_error or RuntimeError("registry unavailable")
        return LoadedModel("support-intent", self.version, self.base_sha256, self.predictor, abstention=self.abstention)

    def captured(self) -> pd.DataFrame:
        return read_batches(self.traffic_dir, list_batches(self.traffic_dir))


@pytest.fixture
def make_harness(tmp_path: Path, classifier, base_info) -> Callable[..., Harness]:
    def build(**config: Any) -> Harness:
        harness = Harness(tmp_path / "traffic", CountingPredictor(classifier), base_info.sha256)
        writer = TrafficWriter(harness.traffic_dir, max_rows=1000, max_age_seconds=60)
        harness.app = create_app({"support": Endpoint(harness.load, harness.probe, writer)},
                                 ServingConfig(**config))
        return harness

    return build


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, poll: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        if poll is not None:
            poll()
        time.sleep(0.02)


def test_single_and_batch_predictions_are_served_and_captured(make_harness) -> None:
    harness = make_harness()
    with TestClient(harness.app) as client:
        assert client.get("/health").json() == {"status": "ok", "model_versions": {"support": "1"}}
        model = client.get("/model").json()
        assert (model["name"], model["version"], model["base_sha256"]) == ("support-intent", "1", harness.base_sha256)
        assert model["loaded_at"].endswith("+00:00")

        one = client.post("/predict", json={"text": "I was charged twice this month"})
        assert one.status_code == 200, one.text
        texts = ["refund my order please", "where is my parcel", "update my card"]
        many = client.post("/predict", json={"texts": texts})
        assert many.status_code == 200, many.text

    assert one.json()["model_version"] == "1" and len(one.json()["predictions"]) == 1
    predictions = one.json()["predictions"] + many.json()["predictions"]
    assert len(predictions) == 4
    for p in predictions:
        assert p["label"] in LABELS and 0 < p["confidence"] <= 1 and p["model_version"] == "1"
        assert len(p["id"]) == 32

    frame = harness.captured()  # shutdown closed the writer
    assert frame["id"].tolist() == [p["id"] for p in predictions]
    assert frame["text"].tolist() == ["I was charged twice this month", *texts]
    assert frame["predicted_label"].tolist() == [p["label"] for p in predictions]
    assert (frame["model_version"] == "1").all() and (frame["model_name"] == "support-intent").all()
    assert (frame["latency_ms"] > 0).all() and frame["embedding"].map(len).eq(32).all()


def test_below_its_threshold_the_server_answers_the_fallback_and_captures_the_abstention(make_harness,
                                                                                      classifier) -> None:
    texts = ["I was charged twice this month", "refund my order please", "where is my parcel", "update my card",
             "the app crashes on login", "cancel my subscription"]
    confidences = classifier.predict(texts).confidences
    threshold = float(np.median(confidences))
    harness = make_harness()
    harness.abstention = ServedAbstention(threshold, "human_review")
    with TestClient(harness.app) as client:
        assert client.get("/model").json()["abstention"] == {"threshold": threshold, "fallback_label": "human_review"}
        response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    below = [p["confidence"] < threshold for p in predictions]
    assert 0 < sum(below) < len(texts)
    for p, abstained in zip(predictions, below, strict=True):
        assert p["abstained"] is abstained and p["predicted_label"] in LABELS
        assert p["label"] == ("human_review" if abstained else p["predicted_label"])
    frame = harness.captured()
    assert frame["abstained"].tolist() == below
    assert frame["predicted_label"].tolist() == [p["predicted_label"] for p in predictions]  # drift sees the guess


def chunked(body: bytes) -> Iterator[bytes]:
    """A body without Content-Length (chunked transfer), to exercise the actual-size check."""
    for start in range(0, len(body), 1000):
        yield body[start : start + 1000]


def test_invalid_requests_get_4xx_with_message_and_are_not_captured(make_harness) -> None:
    harness = make_harness(bearer_token=TOKEN, max_batch_size=4, max_text_chars=50, max_body_bytes=3000)
    post = {"url": "/predict", "headers": AUTH}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"url": "/predict", "json": {"text": "hi"}}, 401, "bearer token"),
        ({"url": "/predict", "json": {"text": "hi"}, "headers": {"Authorization": "Bearer wrong"}}, 401, "token"),
        ({"url": "/predict", "json": {"text": "hi"}, "headers": {"Authorization": TOKEN}}, 401, "token"),
        ({**post, "content": b'{"text": "unterminated'}, 400, "not valid JSON"),
        ({**post, "content": b"\xff\xfe not utf-8"}, 400, "not valid JSON"),
        ({**post, "json": ["a list"]}, 422, "JSON object"),
        ({**post, "json": {"text": 42}}, 422, "must be a string"),
        ({**post, "json": {"texts": "not a list"}}, 422, "list of strings"),
        ({**post, "json": {"texts": ["ok", None]}}, 422, "text #1 must be a string"),
        ({**post, "json": {"texts": []}}, 422, "empty"),
        ({**post, "json": {"text": "   "}}, 422, "empty"),
        ({**post, "json": {"text": "a", "texts": ["b"]}}, 422, "exactly one"),
        ({**post, "json": {"txt": "a"}}, 422, "Unknown field"),
        ({**post, "content": b'{"text": "\\ud800"}'}, 422, "not valid Unicode"),  # lone surrogate
        ({**post, "json": {"text": "x" * 51}}, 413, "over the limit of 50"),
        ({**post, "json": {"texts": ["ok"] * 5}}, 413, "limit of 4 per request"),
        ({**post, "json": {"text": "x" * 4000}}, 413, "exceeds the limit of 3000 bytes"),
        ({**post, "content": chunked(b'{"text": "' + b"x" * 4000 + b'"}')}, 413, "Request body exceeds the limit"),
    ]
    with TestClient(harness.app) as client:
        for kwargs, status, message in cases:
            response = client.post(**kwargs)
            assert response.status_code == status, (kwargs.get("json"), response.text)
            assert message in response.json()["error"], response.json()
        denied = client.get("/model")
        assert denied.status_code == 401 and "token" in denied.json()["error"]
        assert client.get("/model", headers=AUTH).status_code == 200
        assert client.get("/health").status_code == 200  # health needs no token
        assert client.get("/nowhere").json() == {"error": "Not Found"}
        ok = client.post("/predict", json={"texts": ["x" * 50, "refund please"]}, headers=AUTH)
        assert ok.status_code == 200, ok.text

    assert sum(harness.predictor.batch_sizes) == 2  # invalid requests never reached the model
    frame = harness.captured()
    assert frame["id"].tolist() == [p["id"] for p in ok.json()["predictions"]]


def test_failed_prediction_returns_500_and_captures_nothing(make_harness) -> None:
    harness = make_harness()
    with TestClient(harness.app) as client:
        harness.predictor.fail = True
        failed = client.post("/predict", json={"texts": ["refund", "billing"]})
        assert failed.status_code == 500 and "model exploded" in failed.json()["error"]
        harness.predictor.fail = False
        assert client.post("/predict", json={"text": "refund"}).status_code == 200
    assert len(harness.captured()) == 1


async def post_concurrently(app: Any, payloads: list[dict[str, Any]]) -> list[httpx.Response]:
    """Run the app's lifespan (ASGITransport does not) and send all requests at once."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            return await asyncio.gather(*(client.post("/predict", json=p) for p in payloads))


def test_concurrent_requests_are_micro_batched_and_captured_exactly_once(make_harness) -> None:
    harness = make_harness(micro_batch_max=64, micro_batch_wait_ms=20)
    payloads = [{"text": f"where is parcel number {i}"} for i in range(50)]
    responses = asyncio.run(post_concurrently(harness.app, payloads))

    assert [r.status_code for r in responses] == [200] * 50
    ids = [r.json()["predictions"][0]["id"] for r in responses]
    assert len(set(ids)) == 50
    sizes = harness.predictor.batch_sizes
    assert sum(sizes) == 50 and len(sizes) < 50 and max(sizes) > 1, sizes  # requests were grouped
    frame = harness.captured()
    assert len(frame) == 50 and frame["id"].is_unique and set(frame["id"]) == set(ids)
    assert sorted(frame["text"]) == sorted(p["text"] for p in payloads)


def test_micro_batches_respect_their_size_limit(make_harness) -> None:
    harness = make_harness(micro_batch_max=8, micro_batch_wait_ms=20)
    payloads = [{"texts": [f"order {i} a", f"order {i} b", f"order {i} c"]} for i in range(20)]
    responses = asyncio.run(post_concurrently(harness.app, payloads))
    assert all(r.status_code == 200 for r in responses)
    sizes = harness.predictor.batch_sizes
    assert sum(sizes) == 60 and max(sizes) <= 8 and len(sizes) < 20, sizes
    assert len(harness.captured()) == 60


def test_a_lone_client_is_answered_without_the_batching_wait(make_harness) -> None:
    # A ten-minute batching wait: a lone request that waited for company would never come back within the bound.
    harness = make_harness(micro_batch_wait_ms=600_000)
    answered = threading.Event()

    def three_requests() -> None:
        with TestClient(harness.app) as client:
            for i in range(3):
                assert client.post("/predict", json={"text": f"refund for order {i}"}).status_code == 200
        answered.set()

    threading.Thread(target=three_requests, daemon=True).start()
    assert answered.wait(timeout=120), "a lone request waited for the micro-batch to fill"
    assert harness.predictor.batch_sizes == [1, 1, 1]


def test_length_buckets_cover_every_text_once_with_bounded_padding() -> None:
    lengths = [3, 40, 5, 41, 4, 12, 90, 13, 6, 39] * 7
    buckets = length_buckets(lengths, max_size=16, max_padding=1.25)
    assert sorted(i for bucket in buckets for i in bucket) == list(range(len(lengths)))
    for bucket in buckets:
        widths = [lengths[i] for i in bucket]
        assert len(bucket) <= 16
        assert len(bucket) == 1 or len(bucket) * max(widths) <= 1.25 * sum(widths)
    assert len(buckets) < len(lengths) / 4  # similar lengths still share batches


def test_bucketed_batch_predictions_equal_one_at_a_time_predictions(classifier) -> None:
    texts = ["hi", "my card was charged twice for the same order last week, please refund it", "where is my parcel",
             "x " * 200, "cancel", "the invoice shows the wrong address and VAT number, can you fix it?"]
    together = classifier.predict(texts, batch_size=4)
    for i, text in enumerate(texts):
        alone = classifier.predict([text])
        assert together.labels[i] == alone.labels[0]
        assert together.probabilities[i] == pytest.approx(alone.probabilities[0], abs=1e-5)
        assert together.embeddings[i] == pytest.approx(alone.embeddings[0], abs=1e-4)


def test_hot_reload_swaps_model_without_failing_requests(make_harness) -> None:
    harness = make_harness(reload_poll_seconds=0.05)
    statuses: list[int] = []
    with TestClient(harness.app) as client:

        def predict() -> None:
            statuses.append(client.post("/predict", json={"text": "refund my order"}).status_code)

        predict()
        harness.load_delay = 0.5  # a slow load: requests keep being served meanwhile
        harness.version = "2"  # the champion alias moved
        wait_until(lambda: client.get("/model").json()["version"] == "2", poll=predict)
        assert harness.load_calls == 2 and len(statuses) >= 5
        after = client.post("/predict", json={"text": "refund my order"})
        assert after.json()["model_version"] == "2"

        harness.loader_error = RuntimeError("adapter files missing")
        harness.version = "3"  # the next load fails: version 2 keeps serving
        wait_until(lambda: harness.load_failures >= 2, poll=predict)
        assert client.get("/model").json()["version"] == "2"
        assert client.get("/health").json() == {"status": "ok", "model_versions": {"support": "2"}}
        last = client.post("/predict", json={"text": "charged twice"})
        assert last.status_code == 200 and last.json()["model_version"] == "2"

    assert set(statuses) == {200}
    versions = harness.captured()["model_version"]
    assert set(versions) <= {"1", "2"} and "2" in set(versions) and len(versions) == len(statuses) + 2


def test_service_is_unavailable_until_a_model_loads(make_harness) -> None:
    harness = make_harness(reload_poll_seconds=0.05)
    harness.fail_first_loads = 1  # start-up load fails; the reload loop retries
    harness.version = "7"
    with TestClient(harness.app) as client:
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "loading"
        refused = client.post("/predict", json={"text": "refund"})
        assert refused.status_code == 503 and "No model" in refused.json()["error"]
        wait_until(lambda: client.get("/health").status_code == 200)
        assert client.post("/predict", json={"text": "refund"}).json()["model_version"] == "7"
    assert len(harness.captured()) == 1


def test_a_registry_outage_logs_one_traceback_then_one_line_per_probe(make_harness, caplog) -> None:
    harness = make_harness(reload_poll_seconds=0.02)
    with caplog.at_level("INFO", logger="modelops.service.serving"), TestClient(harness.app) as client:
        for outage in range(2):
            caplog.clear()
            harness.probe_error = ConnectionError(f"registry down #{outage}")
            wait_until(lambda: len(_probe_failures(caplog)) >= 4)
            harness.probe_error = None
            wait_until(lambda: "works again" in caplog.text)
            first, *later = _probe_failures(caplog)
            assert first.levelname == "ERROR" and str(first.exc_info[1]) == f"registry down #{outage}"  # traceback
            assert later and all(r.levelname == "WARNING" and not r.exc_info and f"registry down #{outage}"
                                 in r.getMessage() for r in later)  # then one line each
            assert client.post("/predict", json={"text": "refund"}).json()["model_version"] == "1"


def _probe_failures(caplog) -> list:
    return [r for r in caplog.records if "champion version failed; keeping version 1" in r.getMessage()]
