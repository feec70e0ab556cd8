"""Several customisations on one base: each adapter predicts exactly as alone, the base is held once, swaps are
independent and release what they replace."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from modelops.core.monitoring.traffic import list_batches, read_batches
from modelops.core.monitoring.traffic_writer import TrafficWriter
from modelops.core.serving.predictor import AdapterClassifier, SharedBases
from modelops.service.batcher import LoadedModel
from modelops.service.requests import ServingConfig
from modelops.service.serving import Endpoint, create_app
from modelops_tests.helpers import save_random_adapter

TEXTS = ["where is my parcel", "please refund the broken kettle", "I cannot log in to my account since Monday",
         "the invoice shows the wrong VAT number"]
SUPPORT_LABELS = ["billing", "refund", "shipping"]
HR_LABELS = ["leave", "payroll", "benefits", "onboarding", "other"]


@pytest.fixture(scope="module")
def adapters(base_info, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {"support": save_random_adapter(base_info, root / "support-v1", SUPPORT_LABELS, 1),
            "support_v2": save_random_adapter(base_info, root / "support-v2", SUPPORT_LABELS, 2),
            "hr": save_random_adapter(base_info, root / "hr-v1", HR_LABELS, 3)}


def _base_parameters(model) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name and "modules_to_save" not in name)


def test_adapters_on_a_shared_base_predict_as_alone_with_the_base_held_once(base_info, adapters) -> None:
    shared = SharedBases(base_info)
    support, hr = shared.load(adapters["support"]), shared.load(adapters["hr"])
    assert list(shared.bases) == [base_info.sha256] and shared.bases[base_info.sha256].slots == {support.slot, hr.slot}
    alone = {name: AdapterClassifier(base_info, adapters[name]) for name in ("support", "hr")}
    for name, adapter in (("support", support), ("hr", hr), ("support", support)):  # switching back and forth
        got, expected = adapter.predict(TEXTS), alone[name].predict(TEXTS)
        assert adapter.label_names == alone[name].label_names
        assert got.labels == expected.labels
        assert got.probabilities == pytest.approx(expected.probabilities, abs=1e-5)
        assert got.embeddings == pytest.approx(expected.embeddings, abs=1e-4)
    # The two adapters really differ (different heads and label sets), and the base's weights exist once.
    assert support.predict(TEXTS).probabilities.shape == (4, 3) and hr.predict(TEXTS).probabilities.shape == (4, 5)
    single_base = _base_parameters(alone["support"].model)
    assert _base_parameters(shared.bases[base_info.sha256].model) == single_base

    support.release()
    assert hr.predict(TEXTS).probabilities == pytest.approx(alone["hr"].predict(TEXTS).probabilities, abs=1e-5)
    hr.release()
    assert shared.bases[base_info.sha256].model is None  # no adapter left: the base's weights are freed


def test_one_server_serves_each_customisation_and_swaps_each_on_its_own(base_info, adapters, tmp_path) -> None:
    shared = SharedBases(base_info)
    champions = {"support": "support", "hr": "hr"}  # customisation -> adapter its champion alias points at
    loads: dict[str, int] = {"support": 0, "hr": 0}

    def endpoint(name: str) -> Endpoint:
        def load() -> LoadedModel:
            loads[name] += 1
            adapter = shared.load(adapters[champions[name]])
            return LoadedModel(f"{name}-model", champions[name], base_info.sha256, adapter, adapter.release)

        return Endpoint(load, lambda: champions[name], TrafficWriter(tmp_path / name, max_rows=1000))

    app = create_app({"support": endpoint("support"), "hr": endpoint("hr")}, ServingConfig(reload_poll_seconds=0.05))
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok", "model_versions": {"support": "support", "hr": "hr"}}
        support = client.post("/predict/support", json={"texts": TEXTS}).json()
        hr = client.post("/predict/hr", json={"texts": TEXTS}).json()
        assert {p["label"] for p in support["predictions"]} <= set(SUPPORT_LABELS)
        assert {p["label"] for p in hr["predictions"]} <= set(HR_LABELS)
        assert client.get("/model/hr").json()["customisation"] == "hr"

        unnamed = client.post("/predict", json={"text": "refund"})
        assert unnamed.status_code == 404 and "name one" in unnamed.json()["error"]
        unknown = client.post("/predict/sales", json={"text": "refund"})
        assert unknown.status_code == 404 and "hr, support" in unknown.json()["error"]

        champions["support"] = "support_v2"  # support's champion alias moves; hr's does not
        deadline = time.monotonic() + 30
        while client.get("/model/support").json()["version"] != "support_v2":
            assert time.monotonic() < deadline, "support never reloaded"
            time.sleep(0.05)
        after = client.post("/predict/support", json={"texts": TEXTS}).json()
        assert after["model_version"] == "support_v2"
        assert client.post("/predict/hr", json={"texts": TEXTS}).json()["model_version"] == "hr"
        assert loads == {"support": 2, "hr": 1}
        expected = AdapterClassifier(base_info, adapters["support_v2"]).predict(TEXTS)
        assert [p["label"] for p in after["predictions"]] == expected.labels
        # The replaced support adapter was unloaded: the shared base holds the two champions only.
        deadline = time.monotonic() + 10
        while len(shared.bases[base_info.sha256].slots) != 2:
            assert time.monotonic() < deadline, "the replaced adapter was never released"
            time.sleep(0.05)

    for name, sent in (("support", 2 * len(TEXTS)), ("hr", 2 * len(TEXTS))):
        captured = read_batches(tmp_path / name, list_batches(tmp_path / name))
        assert len(captured) == sent and set(captured["model_name"]) == {f"{name}-model"}
