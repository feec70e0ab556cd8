"""Serving latency and throughput: the modelops prediction server, in each serving variant, against a naive
per-request transformers server and a batched transformers server.

Same model on every server: the all-MiniLM-L6-v2 base (`modelops.settings.default_base_model_path()`) with one
LoRA adapter saved by modelops's `save_adapter` without training (r=16/alpha=32 on query+value, classifier and pooler
saved with it, the 10 intents of the generated corpus), loaded from safetensors only and merged into the base
(`merge_and_unload`) everywhere, so what differs is the runtime and the serving path around the same network.
Untrained, because the forward pass costs the same; the variants' quality is measured on trained models by
`bench/serving_int8_quality.py`.

- modelops-int8 / modelops-fp32 / modelops-pytorch: exactly what a user runs, `python -m modelops.app.cli serve`
  with default flags, one server per variant, each with its own MLflow SQLite store and data folder: the adapter is
  registered, its variant recorded through `choose_serving_variant` (the evaluation's path; the policy lists only
  that variant) and promoted to `champion`; the server resolves the alias, downloads and loads that variant (it
  checks `/model` names it), micro-batches concurrent requests (up to 64 texts, 5 ms wait, none for a lone client),
  computes calibrated confidences and 32-d embeddings, and captures every prediction to Parquet (the benchmark
  checks that every request answered was captured) while polling the alias every 5 s. modelops-int8 is what serves
  when the int8 variant passes the serving policy; modelops-pytorch is the server before ONNX variants.
- naive-threadpool: a Starlette app whose `/predict` runs a Hugging Face transformers `pipeline("text-
  classification")` once per request in Starlette's thread pool (what a FastAPI `def` endpoint does), truncation at
  128 tokens like modelops, no batching, no capture. naive-batched: the batched server a user would pick for
  throughput: requests wait in a queue and every pipeline call takes all of them that are waiting (up to 64,
  `batch_size` = their number), run in the thread pool while the next ones queue. (naive-serial, the pipeline on
  the event loop, is available with --baselines.)

Every server is a separate subprocess started here, bound to 127.0.0.1 on a free port, run by the same
`uvicorn.Config` as `modelops.service.serving.run_server` (uvloop + httptools, lifespan on, log level info); all take
one text per request, `POST /predict {"text": "..."}`. Three text mixes, measured one after the other on the same
servers: generated support tickets (`generate_corpus`, seed 11; 29 tokens median, 72 max), CLINC150's real test
queries (`../shared/datasets/clinc150/test.csv`; 10 tokens median, 26 max) and long requests (three generated tickets
joined; truncated at 128 tokens), each sent round-robin. The load generator is a closed loop in this process: `c`
keep-alive HTTP/1.1 connections (a minimal asyncio client, so that it takes little of the CPUs it shares with the
servers), each sending its next request as soon as the previous answer arrived. Per concurrency level every server
gets a warm-up, then the measured time in alternating blocks (A B C C B A ...) so that load from other processes
falls on all servers alike; `other_processes_cpu_cores` records how much there was. Latency is measured by the
client from sending a request to reading its whole response; throughput is requests answered per second of measured
time; anything but a 200 with one prediction counts as an error. Memory: each server's peak resident set (VmHWM).

Usage: python -m bench.serving_latency [--seconds 12] [--warmup 3] [--concurrency 1 4 16 64] [--sources ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import CLINC_DIR, Measurement

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

MODEL_NAME = "support-router"
MAX_LENGTH = 128  # what modelops's AdapterClassifier truncates to; the baseline pipeline gets the same
REQUEST_TIMEOUT = 60.0  # seconds; a request not answered by then counts as an error
TARGETS = {"c16_vs_naive": 3.5, "c16_vs_batched": 1.5, "c1_p50_vs_naive": 1.5, "c16_p99_ms": 100.0}
MODELOPS_VARIANTS = ("onnx-int8", "onnx-fp32", "pytorch")
SERVER_OF = {"onnx-int8": "modelops-int8", "onnx-fp32": "modelops-fp32", "pytorch": "modelops-pytorch"}
SERVED = "modelops-int8"  # what `modelops serve` runs when the int8 variant passed the serving policy
BASELINE_MODES = ("threadpool", "serial", "batched")
BASELINE_DESCRIPTIONS = {
    "threadpool": "Starlette; pipeline call per request in Starlette's thread pool (the FastAPI `def` endpoint)",
    "serial": "Starlette; pipeline call per request on the event loop (the transformers docs' web-server recipe)",
    "batched": "Starlette; requests queued and the pipeline called on every request waiting (up to 64, batch_size "
               "= their number) in the thread pool while the next ones queue: dynamic batching for throughput",
}
TEXT_SOURCES = ("generator", "clinc150", "long")
SHORT_SOURCES = ("generator", "clinc150")  # inputs up to 72 tokens (99% <= 60): the targets bind on these
BATCH_MAX = 64  # the batched baseline's largest pipeline call, as modelops's micro-batch


# ---------------------------------------------------------------- the model both servers load


def build_adapter(out: Path, labels: list[str]) -> Path:
    """A real LoRA adapter + head on the real base, saved by modelops's `save_adapter`, without training steps."""
    from peft import LoraConfig, get_peft_model

    from modelops.core.training import train
    from modelops.core.training.base_model import describe_base_model, load_base_model
    from modelops.settings import default_base_model_path

    base = describe_base_model(default_base_model_path())
    config = train.TrainingConfig()
    train.seed_everything(config.seed)
    model = load_base_model(base, num_labels=len(labels))
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=config.lora.r, lora_alpha=config.lora.alpha,
                                             lora_dropout=config.lora.dropout,
                                             target_modules=list(config.lora.target_modules),
                                             modules_to_save=train._head_modules(model)))
    train.save_adapter(model, out, labels, base, config, {"temperature": 1.0})
    return out


def register_champion(adapter_dir: Path, home: Path, variant: str) -> str:
    """Register the adapter in a fresh MLflow SQLite store under `home` with `variant` as its serving choice and
    promote it to `champion`."""
    from modelops.core.registry.registry import ModelRegistry

    registry = ModelRegistry(f"sqlite:///{home / 'mlflow.db'}", MODEL_NAME, home / "mlartifacts")
    version = register_version(registry, adapter_dir, variant, home / "variants")
    registry.promote(version, "serving latency benchmark")
    return version


def register_version(registry: Any, adapter_dir: Path, variant: str, work: Path) -> str:
    """Register the adapter and, unless `variant` is pytorch, record that ONNX variant as its serving choice through
    `choose_serving_variant` (the evaluation's own path; the serving policy lists only `variant` and tolerates any
    drop, as the adapter is untrained: the variants' quality is measured on trained models by
    bench/serving_int8_quality.py)."""
    from modelops.core.data.datagen import generate_corpus
    from modelops.core.evaluation.evaluate import evaluate
    from modelops.core.evaluation.evaluation_policy import CostModel, GateRules, ServingPolicy
    from modelops.core.evaluation.serving_variants import choose_serving_variant
    from modelops.core.serving.predictor import AdapterClassifier
    from modelops.core.training.base_model import describe_base_model
    from modelops.settings import default_base_model_path

    with registry.run("bench-serving", {"modelops.bench": "serving"}) as run_id:
        version = registry.register_adapter(run_id, adapter_dir, {"data_content_hash": "bench"})
    if variant == "pytorch":
        return version
    classifier = AdapterClassifier(describe_base_model(default_base_model_path()), adapter_dir)
    texts = generate_corpus(200, seed=1)["text"].tolist()
    labels = [classifier.label_names[i % len(classifier.label_names)] for i in range(len(texts))]  # any: untrained
    cost = CostModel(default_error_cost=1.0)
    reference = evaluate(labels, classifier.predict(texts).probabilities, classifier.label_names, cost)
    choice = choose_serving_variant(classifier, texts, labels, reference, cost,
                                    ServingPolicy(variants=[variant], max_macro_f1_drop=1.0),
                                    GateRules(max_class_f1_drop=1.0), work / f"v{version}")
    if choice.variant != variant:
        raise RuntimeError(f"could not build the {variant} variant: {choice.reason}")
    with registry.run("bench-serving-variant", {"modelops.bench": "serving"}) as run_id:
        choice.record(registry, version, run_id)
    return version


# ---------------------------------------------------------------- the naive baseline server (a subprocess)


def baseline_app(adapter_dir: Path, mode: str) -> Any:
    """Starlette app around a transformers pipeline: one call per request (thread pool or event loop), or batched."""
    from peft import PeftModel
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from modelops.settings import default_base_model_path

    base_path = str(default_base_model_path())
    labels = json.loads((adapter_dir / "labels.json").read_text())
    model = AutoModelForSequenceClassification.from_pretrained(
        base_path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)}, use_safetensors=True, local_files_only=True)
    model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload().eval()
    tokenizer = AutoTokenizer.from_pretrained(base_path, local_files_only=True)
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")

    waiting: asyncio.Queue[tuple[str, asyncio.Future[dict[str, Any]]]] = asyncio.Queue()

    def run(text: str) -> dict[str, Any]:
        return classify(text, truncation=True, max_length=MAX_LENGTH)[0]

    def run_many(texts: list[str]) -> list[dict[str, Any]]:
        return classify(texts, batch_size=len(texts), truncation=True, max_length=MAX_LENGTH)

    async def batch_forever() -> None:
        while True:
            requests = [await waiting.get()]
            while not waiting.empty() and len(requests) < BATCH_MAX:
                requests.append(waiting.get_nowait())
            results = await run_in_threadpool(run_many, [text for text, _ in requests])
            for (_, answer), result in zip(requests, results, strict=True):
                answer.set_result(result)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        task = asyncio.create_task(batch_forever()) if mode == "batched" else None
        yield
        if task is not None:
            task.cancel()

    async def predict(request: Request) -> JSONResponse:
        payload = await request.json()
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            return JSONResponse({"error": "send {\"text\": \"...\"}"}, status_code=422)
        if mode == "batched":
            answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            await waiting.put((text, answer))
            result = await answer
        else:
            result = await run_in_threadpool(run, text) if mode == "threadpool" else run(text)
        return JSONResponse({"predictions": [{"label": result["label"], "confidence": result["score"]}]})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health)],
                     lifespan=lifespan)


def serve_baseline(port: int, adapter_dir: Path, mode: str) -> None:
    """Run the baseline with the uvicorn settings of `modelops.service.serving.run_server`."""
    import uvicorn

    app = baseline_app(adapter_dir, mode)
    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", timeout_graceful_shutdown=30,
                                  log_level="info")).run()


# ---------------------------------------------------------------- server processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server subprocess (own session) with its log file."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mib(self) -> dict[str, float]:
        """Resident memory of the server process now and at its peak (Linux /proc), MiB."""
        status = dict(line.split(":", 1) for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
                      if ":" in line)
        return {key: int(status[field].split()[0]) / 1024 for key, field in (("rss", "VmRSS"), ("peak", "VmHWM"))}

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} server not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERM (graceful: drain, lifespan shutdown flushes captured traffic), SIGKILL after 60 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_server(name: str, command: list[str], env: dict[str, str], log_path: Path) -> Server:
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=Path(__file__).resolve().parent.parent)
    return Server(name, port, process, log_path)


# ---------------------------------------------------------------- load generator


class Connection:
    """One keep-alive HTTP/1.1 connection: POST a JSON body, read the status and the whole body."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            self.writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                              b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.port, len(body), body))
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
            if headers.get("connection", "").lower() == "close":
                await self.close()
            return status, payload
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


@dataclass
class PhaseStats:
    """What one load phase observed."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(what[:300])


def _valid(status: int, payload: bytes) -> str | None:
    """None when the response is a 200 with one prediction, else what was wrong."""
    if status != 200:
        return f"HTTP {status}: {payload[:200]!r}"
    try:
        predictions = json.loads(payload)["predictions"]
        assert len(predictions) == 1 and isinstance(predictions[0]["label"], str)
    except (ValueError, KeyError, TypeError, AssertionError):
        return f"bad body: {payload[:200]!r}"
    return None


async def run_phase(connections: list[Connection], bodies: Callable[[], bytes], seconds: float) -> PhaseStats:
    """Closed loop: every connection sends its next request as soon as its previous answer arrived."""
    stats = PhaseStats()
    start = time.perf_counter()
    deadline = start + seconds
    last_end = start

    async def worker(connection: Connection) -> None:
        nonlocal last_end
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status, payload = await asyncio.wait_for(connection.post("/predict", bodies()), REQUEST_TIMEOUT)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError, TimeoutError) as exc:
                stats.error(f"{type(exc).__name__}: {exc}")
                continue
            done = time.perf_counter()
            last_end = max(last_end, done)
            problem = _valid(status, payload)
            if problem is None:
                stats.latencies_ms.append((done - sent) * 1000.0)
            else:
                stats.error(problem)

    await asyncio.gather(*(worker(c) for c in connections))
    stats.seconds = last_end - start
    return stats


def system_busy_seconds() -> float:
    """CPU seconds all processes on the machine spent busy so far (Linux /proc/stat, every core)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_idle_machine(max_wait: float, threshold: float = 0.25) -> float:
    """Wait (at most `max_wait` s) until the machine is idle: under `threshold` cores busy over 2 s; returns that."""
    started = time.monotonic()
    said = started
    while True:
        before = system_busy_seconds()
        time.sleep(2.0)
        busy = (system_busy_seconds() - before) / 2.0
        if busy < threshold or time.monotonic() - started >= max_wait:
            return busy
        if time.monotonic() - said >= 30:
            said = time.monotonic()
            print(f"  waiting for an idle machine ({said - started:.0f}s): {busy:.2f} cores busy", flush=True)


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


@dataclass
class LevelTally:
    """Everything one server did at one concurrency level, summed over its measured blocks."""

    warmup: PhaseStats = field(default_factory=PhaseStats)
    measured: PhaseStats = field(default_factory=PhaseStats)
    blocks: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    other_cpu: float = 0.0

    def add(self, stats: PhaseStats) -> None:
        self.measured.latencies_ms += stats.latencies_ms
        self.measured.errors += stats.errors
        self.measured.error_examples = (self.measured.error_examples + stats.error_examples)[:5]
        self.measured.seconds += stats.seconds
        self.blocks += 1

    def row(self, level: int) -> dict[str, Any]:
        stats, ok = self.measured, len(self.measured.latencies_ms)
        per_request = 1000.0 / ok if ok else float("nan")
        per_second = 1.0 / stats.seconds if stats.seconds else float("nan")
        return {
            "concurrency": level, "warmup_requests": len(self.warmup.latencies_ms) + self.warmup.errors,
            "warmup_errors": self.warmup.errors, "requests": ok + stats.errors, "ok": ok, "errors": stats.errors,
            "error_examples": stats.error_examples, "seconds": round(stats.seconds, 3), "blocks": self.blocks,
            "throughput_rps": ok * per_second, "p50_ms": percentile(stats.latencies_ms, 50),
            "p90_ms": percentile(stats.latencies_ms, 90), "p99_ms": percentile(stats.latencies_ms, 99),
            "max_ms": max(stats.latencies_ms, default=float("nan")),
            "server_cpu_ms_per_request": self.server_cpu * per_request,
            "client_cpu_ms_per_request": self.client_cpu * per_request,
            "server_cpu_cores": self.server_cpu * per_second,
            # other processes on the machine while this server was measured, in cores (of os.cpu_count()):
            # above ~0.1 the machine was shared and the absolute figures are disturbed
            "other_processes_cpu_cores": self.other_cpu * per_second,
        }


async def measure_level(servers: list[Server], level: int, next_body: Callable[[], bytes], warmup: float,
                        seconds: float, block: float) -> dict[str, LevelTally]:
    """One concurrency level: warm up every server, then measure them in alternating blocks of `block` seconds.

    Interleaving (A B B A A B ...) spreads any load from other processes evenly over the servers compared.
    Each block opens fresh connections, so no keep-alive connection sits idle past a server's timeout.
    """
    tallies = {server.name: LevelTally() for server in servers}

    async def phase(server: Server, duration: float) -> PhaseStats:
        connections = [Connection(server.port) for _ in range(level)]
        try:
            return await run_phase(connections, next_body, duration)
        finally:
            for connection in connections:
                await connection.close()

    for server in servers:
        tallies[server.name].warmup = await phase(server, warmup)
    rounds = max(1, round(seconds / block))
    for r in range(rounds):
        for server in servers if r % 2 == 0 else servers[::-1]:
            tally = tallies[server.name]
            server_cpu, client_cpu, busy = server.cpu_seconds(), time.process_time(), system_busy_seconds()
            tally.add(await phase(server, seconds / rounds))
            server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
            tally.server_cpu += server_cpu
            tally.client_cpu += client_cpu
            tally.other_cpu += max(0.0, system_busy_seconds() - busy - server_cpu - client_cpu)
    for server in servers:
        row = tallies[server.name].row(level)
        print(f"  {server.name:<16} c={level:<3} {row['throughput_rps']:8.1f} req/s  p50 {row['p50_ms']:8.2f} ms  "
              f"p99 {row['p99_ms']:8.2f} ms  errors {row['errors']}  server CPU "
              f"{row['server_cpu_ms_per_request']:.2f} ms/req  others {row['other_processes_cpu_cores']:.2f} cores",
              flush=True)
    return tallies


async def sample_labels(port: int, texts: list[str]) -> list[str | None]:
    """The label each text gets (one request at a time), for the same-model check."""
    connection, labels = Connection(port), []
    for text in texts:
        status, payload = await connection.post("/predict", json.dumps({"text": text}).encode())
        labels.append(json.loads(payload)["predictions"][0]["label"] if status == 200 else None)
    await connection.close()
    return labels


def captured_traffic(production_dir: Path) -> tuple[int, dict[int, int]]:
    """Rows modelops captured, and how many micro-batches of each size it ran (its records share a timestamp)."""
    import pandas as pd
    import pyarrow.parquet as pq

    files = sorted(production_dir.glob("batch-*.parquet"))
    if not files:
        return 0, {}
    stamps = pd.concat([pq.read_table(f, columns=["timestamp"]).to_pandas() for f in files])["timestamp"]
    sizes = stamps.value_counts().value_counts().sort_index()
    return len(stamps), {int(size): int(count) for size, count in sizes.items()}


# ---------------------------------------------------------------- the benchmark


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def source_texts(source: str, n: int) -> list[str]:
    """Up to `n` request texts: generated tickets, three tickets joined (long), or CLINC150's test queries."""
    import pandas as pd

    from modelops.core.data.datagen import generate_corpus

    if source == "generator":
        return generate_corpus(n, seed=11)["text"].tolist()
    if source == "long":  # three tickets per request: 80-128 tokens (truncated at MAX_LENGTH)
        tickets = generate_corpus(3 * n, seed=12)["text"].tolist()
        return [" ".join(tickets[i : i + 3]) for i in range(0, 3 * n, 3)]
    if not (CLINC_DIR / "test.csv").is_file():
        raise SystemExit(f"CLINC150 not found at {CLINC_DIR}; see ../shared/datasets/clinc150/README")
    return pd.read_csv(CLINC_DIR / "test.csv")["text"].head(n).tolist()


def body_cycle(texts: list[str]) -> Callable[[], bytes]:
    """The request bodies of `texts`, round-robin."""
    bodies = [json.dumps({"text": t}).encode() for t in texts]
    counter = iter(range(1 << 62))
    return lambda: bodies[next(counter) % len(bodies)]


def served_variant(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/model", timeout=10) as response:
        return str(json.loads(response.read())["variant"])


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Build the adapter, register it once per modelops variant (own MLflow store and data folder each), start every
    server, measure each text mix and level, stop them. Raw figures per server: `levels[source]`, a row per level."""
    from modelops.core.data.datagen import INTENTS

    texts = {source: source_texts(source, args.texts) for source in args.sources}
    check_texts = [t for source in args.sources for t in texts[source][:: max(1, len(texts[source]) // 25)][:25]]
    loop = _new_event_loop()
    results: dict[str, Any] = {}
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="modelops-bench-serving-") as tmp:
        work = Path(tmp)
        adapter_dir = build_adapter(work / "adapter", sorted(INTENTS))
        commands, envs = {}, {}
        for mode in args.baselines:
            commands[f"naive-{mode}"] = [sys.executable, "-m", "bench.serving_latency", "serve-baseline",
                                         "--adapter", str(adapter_dir), "--baseline-mode", mode]
        for variant in args.variants:
            home = work / variant
            started = time.perf_counter()
            version = register_champion(adapter_dir, home / "home", variant)
            print(f"{variant}: registered as {MODEL_NAME} v{version} (champion) in "
                  f"{time.perf_counter() - started:.1f}s", flush=True)
            commands[SERVER_OF[variant]] = [sys.executable, "-m", "modelops.app.cli", "serve"]
            envs[SERVER_OF[variant]] = {"MODELOPS_HOME": str(home / "home"), "MODELOPS_DATA_DIR": str(home / "data")}
        env = {**os.environ, "MODELOPS_CONFIG": str(work / "no-modelops.yaml"),
               "MODELOPS_REGISTERED_MODEL_NAME": MODEL_NAME, "DAGSTER_HOME": str(work / "dagster"),
               "PYTHONUNBUFFERED": "1"}
        try:
            for name, command in commands.items():
                servers.append(start_server(name, command, {**env, **envs.get(name, {})}, work / f"{name}.log"))
                started = time.perf_counter()
                servers[-1].wait_ready()
                print(f"{name} server ready on port {servers[-1].port} in {time.perf_counter() - started:.1f}s",
                      flush=True)
            for variant in args.variants:
                server = next(s for s in servers if s.name == SERVER_OF[variant])
                if served_variant(server.port) != variant:
                    raise RuntimeError(f"{server.name} serves {served_variant(server.port)}, not {variant}")
            if args.wait_idle:
                results["busy_cores_at_start"] = wait_for_idle_machine(args.wait_idle)
            tallies = {source: {level: loop.run_until_complete(measure_level(
                servers, level, body_cycle(texts[source]), args.warmup, args.seconds, args.block))
                for level in args.concurrency} for source in args.sources}
            checks = {s.name: loop.run_until_complete(sample_labels(s.port, check_texts)) for s in servers}
            memory = {s.name: s.memory_mib() for s in servers}
        finally:
            codes = {server.name: server.stop() for server in servers}
        for server in servers:
            results[server.name] = {
                "levels": {source: [tallies[source][level][server.name].row(level) for level in args.concurrency]
                           for source in args.sources},
                "check_labels": checks[server.name], "exit_code": codes[server.name], "memory_mib": memory[server.name],
                # uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean stop
                "log_tail": server.log_tail(8) if codes[server.name] not in (0, -signal.SIGTERM) else None}
        for variant in args.variants:
            ours = results[SERVER_OF[variant]]
            ours["requests_sent"] = sum(r["warmup_requests"] + r["requests"] for rows in ours["levels"].values()
                                        for r in rows) + len(check_texts)
            ours["captured_rows"], ours["micro_batch_sizes"] = captured_traffic(work / variant / "data" / "production")
    loop.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "serve-baseline"],
                        help="serve-baseline: how the benchmark starts a naive server subprocess")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per server and level")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per server and level")
    parser.add_argument("--block", type=float, default=4.0, help="seconds per measured block (servers alternate)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--texts", type=int, default=2000, help="distinct texts per source, sent round-robin")
    parser.add_argument("--sources", nargs="+", choices=TEXT_SOURCES, default=list(TEXT_SOURCES))
    parser.add_argument("--baselines", nargs="+", choices=BASELINE_MODES, default=["threadpool", "batched"],
                        help="transformers servers to run (threadpool is the naive per-request one)")
    parser.add_argument("--variants", nargs="+", choices=MODELOPS_VARIANTS, default=list(MODELOPS_VARIANTS))
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="on a shared machine: wait up to this long for other load to stop before measuring")
    parser.add_argument("--no-write", action="store_true", help="print the result, do not write bench/results")
    parser.add_argument("--baseline-mode", choices=BASELINE_MODES, default="threadpool", help=argparse.SUPPRESS)
    parser.add_argument("--adapter", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.command == "serve-baseline":
        serve_baseline(args.port, args.adapter, args.baseline_mode)
        return
    if not {"threadpool", "batched"} <= set(args.baselines) or "onnx-int8" not in args.variants:
        parser.error("the targets compare modelops-int8 with naive-threadpool and naive-batched: keep all three")
    from bench.machine import write_result

    load_before = os.getloadavg()
    results = run_benchmark(args)
    names = [f"naive-{mode}" for mode in args.baselines] + [SERVER_OF[v] for v in args.variants]
    compared = {source: compare(results, source, names) for source in args.sources}
    agreement = {n: sum(a == b and a is not None for a, b in zip(results[n]["check_labels"],
                                                                 results[SERVED]["check_labels"], strict=True))
                 / len(results[n]["check_labels"]) for n in names}
    summary = {
        "setup": {
            "model": "all-MiniLM-L6-v2 + LoRA r=16/alpha=32 on query,value (classifier+pooler saved with it), "
                     "untrained, 10 intents, merged into the base on every server, safetensors only",
            "max_length": MAX_LENGTH, "texts_per_source": args.texts, "sources": args.sources,
            "seconds_per_server_and_level": args.seconds, "warmup_seconds_per_server_and_level": args.warmup,
            "block_seconds": args.block,
            "modelops": "python -m modelops.app.cli serve, default flags (micro-batch 64 texts / 5 ms, traffic capture "
                        "to Parquet on, champion alias polled every 5 s), one server per variant: modelops-int8 "
                        "(what serves when int8 passes the serving policy), modelops-fp32, modelops-pytorch (the "
                        "server before ONNX variants)",
            "baselines": {f"naive-{m}": BASELINE_DESCRIPTIONS[m] for m in args.baselines},
            "uvicorn": "same Config for all: 127.0.0.1, lifespan on, log_level info, timeout_graceful_shutdown 30",
            "request": 'POST /predict {"text": "..."}: one text per request; keep-alive; closed loop'},
        "levels": compared,
        "memory_mib": {n: results[n]["memory_mib"] for n in names},
        "label_agreement_with_modelops_int8": agreement,
        "captured_rows": {n: results[n]["captured_rows"] for n in names if "captured_rows" in results[n]},
        "requests_sent": {n: results[n]["requests_sent"] for n in names if "requests_sent" in results[n]},
        # {texts in the micro-batch: how many micro-batches}, over the whole run (all levels, warm-ups, check)
        "micro_batch_sizes": {n: results[n]["micro_batch_sizes"] for n in names if "micro_batch_sizes" in results[n]},
        # the CPUs may be shared: other_processes_cpu_cores per server and level says how much
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "busy_cores_at_start": results.get("busy_cores_at_start"),
        "server_exit_codes": {n: results[n]["exit_code"] for n in names},
    }
    for n in summary["captured_rows"]:
        if summary["captured_rows"][n] != summary["requests_sent"][n]:
            print(f"WARNING: {n} captured {summary['captured_rows'][n]} rows for {summary['requests_sent'][n]} "
                  f"requests", flush=True)
    if args.no_write:
        print(json.dumps(summary, indent=2))
        return
    rows = [m for source, levels in compared.items() for m in measurements(source, levels, args.variants)]
    rows += [Measurement(f"serving_memory_mib_{SERVER_OF[v].removeprefix('modelops-')}", results[SERVER_OF[v]]
                         ["memory_mib"]["peak"], "MiB", results["naive-threadpool"]["memory_mib"]["peak"],
                         "reported (peak resident memory; baseline: naive-threadpool)", None) for v in args.variants]
    write_result("serving_latency", summary, rows + [error_row(results, [SERVER_OF[v] for v in args.variants])])


def compare(results: dict[str, Any], source: str, names: list[str]) -> list[dict[str, Any]]:
    """Per level of one text source: every server's row and the throughput ratios against both baselines."""
    rows = {name: {row["concurrency"]: row for row in results[name]["levels"][source]} for name in names}
    levels = []
    for c in sorted(rows[SERVED]):
        level: dict[str, Any] = {"concurrency": c, **{n: rows[n][c] for n in names}}
        for baseline in ("naive-threadpool", "naive-batched"):
            level[f"throughput_ratio_vs_{baseline}"] = {
                n: rows[n][c]["throughput_rps"] / rows[baseline][c]["throughput_rps"]
                if rows[baseline][c]["throughput_rps"] else None for n in names if n.startswith("modelops")}
        levels.append(level)
    return levels


def measurements(source: str, levels: list[dict[str, Any]], variants: list[str]) -> list[Measurement]:
    """The targets' rows (on the short-text sources; reported on the long mix) for modelops-int8, plus reported
    throughput and p99 at every level and the other variants' throughput at c16."""
    suffix = "" if source == "generator" else f"_{source}"
    binding = source in SHORT_SOURCES
    by_level = {level["concurrency"]: level for level in levels}
    out: list[Measurement] = []

    def target(words: str, met: bool) -> tuple[str, bool | None]:
        return (words, met) if binding else (f"reported (targets bind on {', '.join(SHORT_SOURCES)})", None)

    if 16 in by_level:
        ours, naive, batched = (by_level[16][n] for n in (SERVED, "naive-threadpool", "naive-batched"))
        ratio = ours["throughput_rps"] / naive["throughput_rps"]
        out.append(Measurement(f"serving_c16_vs_naive{suffix}", ours["throughput_rps"], "req/s",
                               naive["throughput_rps"], *target(f">= {TARGETS['c16_vs_naive']}x the naive "
                               "per-request server", ratio >= TARGETS["c16_vs_naive"])))
        ratio = ours["throughput_rps"] / batched["throughput_rps"]
        out.append(Measurement(f"serving_c16_vs_batched_baseline{suffix}", ours["throughput_rps"], "req/s",
                               batched["throughput_rps"], *target(f">= {TARGETS['c16_vs_batched']}x the "
                               "batched transformers server", ratio >= TARGETS["c16_vs_batched"])))
        out.append(Measurement(f"serving_c16_p99_ms{suffix}", ours["p99_ms"], "ms", naive["p99_ms"],
                               *target(f"<= {TARGETS['c16_p99_ms']:g} ms at c16",
                                       ours["p99_ms"] <= TARGETS["c16_p99_ms"])))
        for variant in variants:
            if SERVER_OF[variant] != SERVED:
                other = by_level[16][SERVER_OF[variant]]
                out.append(Measurement(f"serving_c16_{variant.replace('-', '_')}_vs_naive{suffix}",
                                       other["throughput_rps"], "req/s", naive["throughput_rps"],
                                       "reported (another variant of the same server)", None))
    if 1 in by_level:
        ours, naive = by_level[1][SERVED], by_level[1]["naive-threadpool"]
        speedup = naive["p50_ms"] / ours["p50_ms"]
        out.append(Measurement(f"serving_c1_p50_vs_naive{suffix}", speedup, "x (naive p50 / modelops p50)", None,
                               *target(f">= {TARGETS['c1_p50_vs_naive']}x (modelops p50 {ours['p50_ms']:.2f} ms,"
                                       f" naive {naive['p50_ms']:.2f} ms)", speedup >= TARGETS["c1_p50_vs_naive"])))
    for c, level in by_level.items():
        ours, naive = level[SERVED], level["naive-threadpool"]
        out.append(Measurement(f"serving_throughput_c{c}{suffix}", ours["throughput_rps"], "req/s",
                               naive["throughput_rps"], "reported (baseline: naive per-request server)", None))
        out.append(Measurement(f"serving_p99_ms_c{c}{suffix}", ours["p99_ms"], "ms", naive["p99_ms"],
                               "reported (lower is better)", None))
        out.append(Measurement(f"serving_cpu_ms_per_request_c{c}{suffix}", ours["server_cpu_ms_per_request"], "ms",
                               naive["server_cpu_ms_per_request"], "reported (lower is better)", None))
    return out


def error_row(results: dict[str, Any], names: list[str]) -> Measurement:
    """Non-200 or malformed answers from the modelops servers over every source, level and warm-up."""
    def errors(name: str) -> int:
        return sum(r["errors"] + r["warmup_errors"] for rows in results[name]["levels"].values() for r in rows)

    ours = sum(errors(n) for n in names)
    return Measurement("serving_errors", ours, "responses", None,
                       "0 non-200 or malformed responses from the modelops servers", ours == 0)


if __name__ == "__main__":
    main()
