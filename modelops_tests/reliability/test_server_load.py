"""Load on the real prediction server over 127.0.0.1 (uvicorn, a MiniLM adapter, MLflow's tracking-server app).

No request fails, every prediction is captured exactly once, p50/p99 are printed; the champion is swapped in the
middle of the load without failing a request; then the MLflow server is killed and the loaded champion keeps serving
while the reload probe fails (bounded retries) and says so in the log.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx
import numpy as np
import pytest

from modelops.core.data.datagen import generate_corpus
from modelops.core.monitoring.traffic import list_batches, read_batches
from modelops.core.monitoring.traffic_writer import TrafficWriter
from modelops.core.registry.registry import ModelRegistry
from modelops.service.batcher import LoadedModel
from modelops.service.requests import ServingConfig
from modelops.service.serving import Endpoint, create_app
from modelops_tests.helpers import LABELS, free_port, save_random_adapter

CONCURRENCY = 32
MLFLOW_SERVER = """
import os
import sys

os.environ["_MLFLOW_SERVER_FILE_STORE"] = sys.argv[1]
from mlflow.server import app
from werkzeug.serving import make_server

server = make_server("127.0.0.1", int(sys.argv[2]), app, threaded=True)
print("ready", flush=True)
server.serve_forever()
"""


@pytest.fixture()
def mlflow_server(tmp_path: Path, mlflow_template_db: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """MLflow's tracking server app on 127.0.0.1 (its own process, a SQLite store); yields its URI and process."""
    shutil.copyfile(mlflow_template_db, tmp_path / "mlflow.db")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", MLFLOW_SERVER, f"sqlite:///{tmp_path / 'mlflow.db'}", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.kill()
        process.wait()


@dataclass
class Load:
    """What the clients saw."""

    statuses: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)
    completed: int = 0

    def add(self, response: httpx.Response, seconds: float) -> None:
        self.statuses.append(response.status_code)
        self.latencies_ms.append(seconds * 1000)
        if response.status_code == 200:
            self.predictions.extend(response.json()["predictions"])
        self.completed += 1


async def _send(url: str, total: int, texts: list[str], load: Load, concurrency: int = CONCURRENCY) -> None:
    """`total` POST /predict requests from `concurrency` clients; every tenth request carries four texts."""
    issued = iter(range(total))
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:

        async def worker() -> None:
            for i in issued:
                body = {"texts": [texts[(i + k) % len(texts)] for k in range(4)]} if i % 10 == 0 \
                    else {"text": texts[i % len(texts)]}
                started = time.perf_counter()
                response = await client.post("/predict", json=body)
                load.add(response, time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


class Server:
    """The prediction service under uvicorn on 127.0.0.1, in a background thread."""

    def __init__(self, app, port: int) -> None:
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                                     log_level="warning", timeout_graceful_shutdown=30))
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 300
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True  # graceful: drains requests, then the lifespan closes the traffic writer
        self._thread.join(120)
        assert not self._thread.is_alive(), "the server did not shut down"

    def model_version(self) -> str:
        return httpx.get(f"{self.url}/model", timeout=30).json()["version"]


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


# 1,000 requests take about 40 s on 2 shared cores (~25 req/s with the MiniLM champion); 20,000 are `slow`.
@pytest.mark.parametrize("total", [1000, pytest.param(20_000, marks=pytest.mark.slow)])
def test_load_with_a_champion_swap_and_a_registry_outage_fails_no_request(
        total: int, mlflow_server, base_info, untrained_adapter_dir: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    from modelops.core.serving.served_model import load_champion as load_served

    uri, mlflow_process = mlflow_server
    owner = ModelRegistry(uri, "support-router", tmp_path / "artifacts")  # training and promotion side
    other_labels = ["alpha", "beta", "gamma"]  # v2 answers other labels: an answer misattributed to a version shows
    for adapter in (untrained_adapter_dir, save_random_adapter(base_info, tmp_path / "v2", other_labels, seed=3)):
        with owner.run("train", {}) as run_id:
            version = owner.register_adapter(run_id, adapter, {})
    owner.promote("1", "first champion")
    served = ModelRegistry(uri, "support-router")  # the server's own client, as `modelops serve` builds it

    def load_champion() -> LoadedModel:
        champion = load_served(served, base_info, tmp_path / "serving-cache")
        loaded, classifier = champion.version, champion.classifier
        return LoadedModel(served.model_name, loaded, base_info.sha256, classifier)

    traffic = tmp_path / "production"
    app = create_app({"support_router": Endpoint(load_champion, lambda: served.alias_version("champion"),
                                                 TrafficWriter(traffic, max_rows=500, max_age_seconds=2.0))},
                     ServingConfig(reload_poll_seconds=0.5))
    texts = generate_corpus(500, seed=7)["text"].tolist()
    load, outage = Load(), Load()
    caplog.set_level(logging.ERROR, logger="modelops.service.serving")
    with Server(app, free_port()) as server:
        assert server.model_version() == "1"

        async def load_with_swaps() -> None:
            async def swap() -> None:  # v2, v1, v2 while the load runs: three swaps under load
                for step, promoted in enumerate([version, "1", version], start=1):
                    while load.completed < total * step // 4:
                        await asyncio.sleep(0.05)
                    await asyncio.to_thread(owner.promote, promoted, "promoted in the middle of the load")
                    while await asyncio.to_thread(server.model_version) != promoted:
                        await asyncio.sleep(0.05)

            started = time.perf_counter()
            await asyncio.gather(_send(server.url, total, texts, load), swap())
            seconds = time.perf_counter() - started
            print(f"\n{total} requests ({len(load.predictions)} predictions) at concurrency {CONCURRENCY} in "
                  f"{seconds:.1f}s: {total / seconds:.0f} req/s, p50 {_percentile(load.latencies_ms, 50):.1f} ms, "
                  f"p99 {_percentile(load.latencies_ms, 99):.1f} ms, max {max(load.latencies_ms):.0f} ms")

        asyncio.run(load_with_swaps())
        assert server.model_version() == version

        mlflow_process.send_signal(signal.SIGKILL)  # the registry goes away while the server is busy
        mlflow_process.wait()
        deadline = time.monotonic() + 120
        while "champion version failed; keeping version" not in caplog.text:  # ~7 s of bounded retries
            assert time.monotonic() < deadline, "the reload probe never reported the outage"
            asyncio.run(_send(server.url, 20, texts, outage, concurrency=4))
        asyncio.run(_send(server.url, 100, texts, outage, concurrency=8))
        assert server.model_version() == version

    assert set(load.statuses) == {200} and set(outage.statuses) == {200}
    versions = [p["model_version"] for p in load.predictions]
    assert {"1", version} == set(versions) and versions.count(version) > 0
    labels_of = {"1": set(LABELS), version: set(other_labels)}
    assert all(p["predicted_label"] in labels_of[p["model_version"]] for p in load.predictions + outage.predictions)
    changes = sum(a != b for a, b in zip(versions, versions[1:]))  # answers complete out of order around a swap
    assert changes >= 3
    assert {p["model_version"] for p in outage.predictions} == {version}
    probe_failures = [r for r in caplog.records if "champion version failed; keeping version" in r.getMessage()]
    assert "RegistryUnavailableError" in (probe_failures[0].exc_text or "")
    print(f"registry outage: {len(outage.predictions)} predictions served by v{version}; the probe failed "
          f"{len(probe_failures)} time(s), e.g. {probe_failures[0].exc_text.splitlines()[-1][:200]}")

    captured = read_batches(traffic, list_batches(traffic))  # the shutdown flushed the writer
    ids = [p["id"] for p in load.predictions + outage.predictions]
    assert len(captured) == len(ids) and captured["id"].is_unique and len(set(ids)) == len(ids)
    assert set(captured["id"]) == set(ids)
    assert captured.set_index("id").loc[ids, "model_version"].tolist() == [p["model_version"] for p in
                                                                           load.predictions + outage.predictions]
