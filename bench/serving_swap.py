"""Hot swaps under load: while 16 clients keep sending requests, the champion alias moves 10 times between two
versions and the server reloads each time; no request may fail and every answer must come from the version it names.

The two versions are the same untrained MiniLM adapter saved with different label sets (v1: the generator's 10
intents; v2: the same names with a `-b` suffix), each recorded with its int8 ONNX variant through
`choose_serving_variant`, so an answer produced by one version but labelled with the other's number shows as a
label outside that version's set. The server is `python -m modelops.app.cli serve --reload-seconds 0.2` (the
default polls every 5 s; 0.2 s only makes ten swaps fit in a short run). Each swap: `promote` in the MLflow store,
then poll `/model` until the server names the new version (recorded: seconds from the promotion to the new version
serving), then 1 s of load on it. Also checked: every answered request was captured to Parquet exactly once.

Usage: python -m bench.serving_swap [--swaps 10] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import Measurement
from bench.serving_latency import (
    MODEL_NAME,
    Connection,
    build_adapter,
    captured_traffic,
    register_version,
    source_texts,
    start_server,
)


async def run_load(port: int, clients: int, texts: list[str], stop: asyncio.Event,
                   answers: list[dict[str, Any]], problems: list[str]) -> None:
    """Closed loop from `clients` connections until `stop` is set; every answer's prediction, or what went wrong."""
    counter = iter(range(1 << 62))

    async def client() -> None:
        connection = Connection(port)
        while not stop.is_set():
            body = json.dumps({"text": texts[next(counter) % len(texts)]}).encode()
            try:
                status, payload = await asyncio.wait_for(connection.post("/predict", body), 60)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
                problems.append(f"{type(error).__name__}: {error}")
                continue
            if status != 200:
                problems.append(f"HTTP {status}: {payload[:200]!r}")
                continue
            answer = json.loads(payload)
            answers.extend({**p, "response_version": answer["model_version"]} for p in answer["predictions"])
        await connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))


async def served_version(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /model HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await reader.read()
    writer.close()
    return str(json.loads(data.split(b"\r\n\r\n", 1)[1])["version"])


async def swaps(port: int, registry: Any, versions: list[str], count: int, stop: asyncio.Event) -> list[float]:
    """Promote the other version `count` times; seconds from each promotion to the server naming it."""
    await asyncio.sleep(1.0)
    seconds = []
    for i in range(count):
        target = versions[(i + 1) % 2]
        started = time.perf_counter()
        await asyncio.to_thread(registry.promote, target, f"swap {i + 1} under load")
        while await served_version(port) != target:
            await asyncio.sleep(0.02)
        seconds.append(time.perf_counter() - started)
        await asyncio.sleep(1.0)
    stop.set()
    return seconds


def main() -> None:
    from bench.machine import write_result
    from modelops.core.data.datagen import INTENTS
    from modelops.core.registry.registry import ModelRegistry

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    label_sets = {"v1": sorted(INTENTS), "v2": [f"{label}-b" for label in sorted(INTENTS)]}
    texts = source_texts("generator", 500)
    with tempfile.TemporaryDirectory(prefix="modelops-bench-swap-") as tmp:
        work = Path(tmp)
        registry = ModelRegistry(f"sqlite:///{work / 'home' / 'mlflow.db'}", MODEL_NAME, work / "home" / "mlartifacts")
        (work / "home").mkdir()
        versions = [register_version(registry, build_adapter(work / name, labels), "onnx-int8", work / "variants")
                    for name, labels in label_sets.items()]
        labels_of = {version: set(labels) for version, labels in zip(versions, label_sets.values(), strict=True)}
        registry.promote(versions[0], "swap benchmark: first champion")
        env = {**os.environ, "MODELOPS_HOME": str(work / "home"), "MODELOPS_DATA_DIR": str(work / "data"),
               "MODELOPS_CONFIG": str(work / "no-modelops.yaml"), "MODELOPS_REGISTERED_MODEL_NAME": MODEL_NAME,
               "DAGSTER_HOME": str(work / "dagster"), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "modelops.app.cli", "serve", "--reload-seconds", "0.2"]
        server = start_server("modelops", command, env, work / "server.log")
        answers: list[dict[str, Any]] = []
        problems: list[str] = []
        try:
            server.wait_ready()

            async def run() -> list[float]:
                stop = asyncio.Event()
                load = asyncio.create_task(run_load(server.port, args.clients, texts, stop, answers, problems))
                seconds = await swaps(server.port, registry, versions, args.swaps, stop)
                await load
                return seconds

            started = time.perf_counter()
            swap_seconds = asyncio.run(run())
            duration = time.perf_counter() - started
        finally:
            code = server.stop()
        log_tail = server.log_tail(40)
        captured, _ = captured_traffic(work / "data" / "production")
    misattributed = [a for a in answers if a["model_version"] not in labels_of
                     or a["predicted_label"] not in labels_of[a["model_version"]]
                     or a["model_version"] != a["response_version"]]
    per_version = {v: sum(a["model_version"] == v for a in answers) for v in versions}
    failed = len(problems) + len(misattributed)
    print(f"{len(answers)} answers in {duration:.1f}s across {len(swap_seconds)} swaps: {len(problems)} failed, "
          f"{len(misattributed)} misattributed; per version {per_version}; captured {captured}", flush=True)
    result = {"swaps": len(swap_seconds), "clients": args.clients, "answers": len(answers),
              "answers_per_version": per_version, "failed_requests": len(problems), "problems": problems[:10],
              "misattributed": len(misattributed), "misattributed_examples": misattributed[:5],
              "captured_rows": captured, "seconds": duration, "swap_seconds": swap_seconds,
              "server_exit_code": code, "server_log_tail": log_tail if code not in (0, -15) else None}
    write_result("serving_swap", result, [
        Measurement("serving_swap_failed_requests", failed, "requests", None,
                    f"0 failed or misattributed requests across {args.swaps} swaps under load "
                    f"({len(answers)} answers; {captured} captured)", failed == 0 and captured == len(answers)),
        Measurement("serving_swap_seconds_median", sorted(swap_seconds)[len(swap_seconds) // 2], "s", None,
                    "reported (promotion to the new version serving, with the alias polled every 0.2 s)", None)])


if __name__ == "__main__":
    main()
