"""`modelops serve` with two customisations declared in modelops.yaml: one process, each champion from its own
registered model, each promotion followed on its own, each customisation's traffic in its own folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from modelops.core.evaluation.abstention import ServedAbstention
from modelops.core.registry.registry import ModelRegistry
from modelops.core.monitoring.traffic import list_batches, read_batches
from modelops_tests.helpers import free_port, save_random_adapter


def _wait(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _get(url: str) -> dict | None:
    try:
        return httpx.get(url, timeout=10).json()
    except httpx.HTTPError:
        return None


def test_serve_answers_each_customisation_from_its_champion_and_follows_each_promotion(
        base_info, tmp_path: Path, fresh_mlflow_db) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    config = tmp_path / "modelops.yaml"
    config.write_text(yaml.safe_dump({"customisations": {
        "support": {}, "hr": {"registered_model_name": "hr-router"}}}))
    uri = fresh_mlflow_db(home / "mlflow.db")
    adapters = tmp_path / "adapters"
    registries = {"support": ModelRegistry(uri, "support", home / "mlartifacts"),
                  "hr": ModelRegistry(uri, "hr-router", home / "mlartifacts")}
    for name, labels, seeds in (("support", ["billing", "refund", "shipping"], (1, 2)),
                                ("hr", ["leave", "payroll", "benefits", "onboarding"], (3,))):
        for seed in seeds:
            with registries[name].run("train", {}) as run_id:
                registries[name].register_adapter(
                    run_id, save_random_adapter(base_info, adapters / f"{name}-{seed}", labels, seed), {})
        registries[name].promote("1", "first champion")
    # hr's evaluation recorded an abstention threshold no random adapter reaches: every answer is the fallback.
    for tag, value in ServedAbstention(0.99, "human_review").tags().items():
        registries["hr"].client.set_model_version_tag("hr-router", "1", tag, value)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MODELOPS_CONFIG": str(config), "MODELOPS_HOME": str(home), "MODELOPS_DATA_DIR": str(data),
           "DAGSTER_HOME": str(tmp_path / "dagster")}
    server = subprocess.Popen([sys.executable, "-m", "modelops.app.cli", "serve", "--port", str(port), "--reload-seconds",
                               "0.5", "--batch-seconds", "0.5"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait(lambda: (_get(f"{url}/health") or {}).get("status") == "ok", "both champions to load")
        assert _get(f"{url}/health")["model_versions"] == {"support": "1", "hr": "1"}
        support = httpx.post(f"{url}/predict/support", json={"texts": ["refund my order", "where is it"]}).json()
        hr = httpx.post(f"{url}/predict/hr", json={"text": "how many days of leave do I have"}).json()
        assert {p["label"] for p in support["predictions"]} <= {"billing", "refund", "shipping"}
        assert [(p["label"], p["abstained"]) for p in hr["predictions"]] == [("human_review", True)]
        assert {p["predicted_label"] for p in hr["predictions"]} <= {"leave", "payroll", "benefits", "onboarding"}
        assert not any(p["abstained"] for p in support["predictions"])  # support's version records no threshold
        assert httpx.post(f"{url}/predict", json={"text": "refund"}).status_code == 404  # which customisation?

        registries["support"].promote("2", "second champion")
        _wait(lambda: (_get(f"{url}/model/support") or {}).get("version") == "2", "support to follow its promotion")
        assert _get(f"{url}/model/hr")["version"] == "1"
        after = httpx.post(f"{url}/predict/support", json={"text": "refund my order"}).json()
        assert after["model_version"] == "2"
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0]
    # uvicorn re-raises SIGTERM once its graceful shutdown (writers flushed and closed) is complete
    assert "Application shutdown complete" in output and server.returncode in (0, -signal.SIGTERM), output[-3000:]
    captured = {name: read_batches(data / name / "production", list_batches(data / name / "production"))
                for name in ("support", "hr")}
    assert sorted(captured["support"]["model_version"]) == ["1", "1", "2"]
    assert list(captured["hr"]["model_name"]) == ["hr-router"]
