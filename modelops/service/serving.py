"""The prediction HTTP service: validated requests, micro-batched inference, traffic capture and hot reload.

It serves one or more customisations, each with its own champion, batcher, traffic writer and reload: `POST
/predict/<customisation>` and `GET /model/<customisation>`; `/predict` and `/model` name none when only one is served.

Listens on 127.0.0.1 unless configured otherwise (then only with a bearer token); with `redact_traffic`, PII is
replaced in captured texts before they are written.

Status codes: 400 invalid JSON or Content-Length; 401 missing/wrong bearer token; 404 unknown customisation (or none
named while several are served); 413 any size limit (body bytes,
texts per request, characters per text); 422 wrong shape or types (not an object, neither/both of `text` and
`texts`, unknown fields, non-string or empty text, empty list); 500 the model failed; 503 no model loaded yet.
Every error body is `{"error": "<message>"}` and nothing is captured for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelops.core.defaults import LOOPBACK, LOOPBACK_HOSTS, MAX_TEXT_CHARS
from modelops.core.monitoring.traffic import TrafficRecord, TrafficWriter

if TYPE_CHECKING:
    from modelops.core.evaluation.abstention import ServedAbstention

log = logging.getLogger(__name__)




class ServingConfigError(ValueError):
    """A ServingConfig value that would make the service unsafe or unusable."""


@dataclass(frozen=True)
class ServingConfig:
    """Where to listen, request limits, micro-batching and reload timing, optional bearer token, PII redaction.

    Listening beyond loopback requires a bearer token; limits must be positive.
    """

    host: str = LOOPBACK
    port: int = 8765
    max_batch_size: int = 64  # max texts in one request
    max_text_chars: int = MAX_TEXT_CHARS
    max_body_bytes: int = 1_000_000
    micro_batch_max: int = 64  # max texts the batcher sends to the model at once
    micro_batch_wait_ms: float = 5.0  # how long the batcher waits to fill a micro-batch
    reload_poll_seconds: float = 5.0
    bearer_token: str | None = None  # when set, /predict and /model need `Authorization: Bearer <token>`
    redact_traffic: bool = False  # replace e-mails, IBANs, card and phone numbers before captured texts touch disk

    def __post_init__(self) -> None:
        if self.bearer_token is not None and not self.bearer_token.strip():
            raise ServingConfigError("bearer_token is empty; set a non-empty token or None for no authentication")
        if self.host not in LOOPBACK_HOSTS and self.bearer_token is None:
            raise ServingConfigError(f"Refusing to listen on {self.host!r} (beyond loopback) without a bearer token; "
                                     "set bearer_token (modelops serve --token) or listen on 127.0.0.1")
        limits = {"max_batch_size": self.max_batch_size, "max_text_chars": self.max_text_chars,
                  "max_body_bytes": self.max_body_bytes, "micro_batch_max": self.micro_batch_max}
        not_positive = sorted(name for name, value in limits.items() if value < 1)
        if not_positive:
            raise ServingConfigError(f"{', '.join(not_positive)} must be at least 1")


@dataclass(frozen=True)
class LoadedModel:
    """A loaded champion: registry name and version, base model hash, a predictor with .predict(texts), and what
    unloads it once it is replaced and no prediction uses it any more (None: garbage collection does)."""

    name: str
    version: str
    base_sha256: str
    predictor: Any
    release: Callable[[], None] | None = None
    abstention: ServedAbstention | None = None  # recorded with the version at evaluation; None: always answer


ModelLoader = Callable[[], LoadedModel]
VersionProbe = Callable[[], str | None]


@dataclass(frozen=True)
class Endpoint:
    """What serves one customisation: how to load its champion, which version is champion now, where traffic goes."""

    load_model: ModelLoader
    probe_version: VersionProbe
    writer: TrafficWriter


class RequestError(Exception):
    """A request rejected before prediction: HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# ---------------------------------------------------------------- request parsing


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) a declared or actual size over `limit` without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError(400, f"Invalid Content-Length header {declared!r}") from None
        if size > limit:
            raise RequestError(413, f"Request body of {size} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise RequestError(413, f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_texts(body: bytes, config: ServingConfig) -> list[str]:
    """`{"text": str}` or `{"texts": [str, ...]}` -> the list of texts, or RequestError."""
    try:
        payload = json.loads(body)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise RequestError(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestError(422, 'Expected a JSON object {"text": "..."} or {"texts": ["...", ...]}')
    unknown = sorted(set(payload) - {"text", "texts"})
    if unknown:
        raise RequestError(422, f"Unknown field(s) {unknown}; send only 'text' or 'texts'")
    if ("text" in payload) == ("texts" in payload):
        raise RequestError(422, "Send exactly one of 'text' (a string) or 'texts' (a list of strings)")
    if "text" in payload:
        texts = [payload["text"]]
    else:
        texts = payload["texts"]
        if not isinstance(texts, list):
            raise RequestError(422, "'texts' must be a list of strings")
        if not texts:
            raise RequestError(422, "'texts' is empty; send at least one text")
        if len(texts) > config.max_batch_size:
            raise RequestError(413, f"{len(texts)} texts exceed the limit of {config.max_batch_size} per request")
    for i, text in enumerate(texts):
        _check_text(text, i, config.max_text_chars)
    return texts


def _check_text(text: object, index: int, max_chars: int) -> None:
    where = f"text #{index}"
    if not isinstance(text, str):
        raise RequestError(422, f"{where} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise RequestError(422, f"{where} is empty")
    if len(text) > max_chars:
        raise RequestError(413, f"{where} has {len(text)} characters, over the limit of {max_chars}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(422, f"{where} is not valid Unicode (lone surrogate)") from None


# ---------------------------------------------------------------- micro-batching


class PredictionFailed(Exception):
    """The model raised (or no model was loaded) for a micro-batch."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Pending:
    texts: list[str]
    received_at: float  # time.perf_counter() when the request arrived
    future: asyncio.Future[tuple[LoadedModel, list[TrafficRecord]]]


class MicroBatcher:
    """Groups queued requests into micro-batches; one predict call per micro-batch, in a worker thread.

    It waits up to micro_batch_wait_ms for more requests only while requests are arriving concurrently (the last
    micro-batch held more than one); a lone client is answered without that wait.
    """

    def __init__(self, current_model: Callable[[], LoadedModel | None], writer: TrafficWriter,
                 config: ServingConfig) -> None:
        self._current_model = current_model
        self._writer = writer
        self._redact = config.redact_traffic
        self._max = config.micro_batch_max
        self._wait = config.micro_batch_wait_ms / 1000.0
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._concurrent = False  # did the last micro-batch hold more than one request?
        self._busy = False  # is a micro-batch being predicted?
        self._retired: list[LoadedModel] = []  # replaced models to release once no micro-batch can use them
        self._releasing: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still queued fail with 503."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(PredictionFailed(503, "Server is shutting down"))

    async def submit(self, texts: list[str], received_at: float) -> tuple[LoadedModel, list[TrafficRecord]]:
        """Queue texts; return the model that served them and one captured record per text."""
        future: asyncio.Future[tuple[LoadedModel, list[TrafficRecord]]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(texts, received_at, future))
        return await future

    async def _run(self) -> None:
        carry: _Pending | None = None
        while True:
            first = carry if carry is not None else await self._queue.get()
            batch, carry = await self._collect(first)
            try:
                await self._process(batch)
            except Exception:  # never let the worker die
                log.exception("Micro-batch worker error")

    async def _collect(self, first: _Pending) -> tuple[list[_Pending], _Pending | None]:
        """Add queued requests to `first` until micro_batch_max texts or micro_batch_wait_ms; whole requests only."""
        loop = asyncio.get_running_loop()
        batch, size, deadline = [first], len(first.texts), loop.time() + (self._wait if self._concurrent else 0.0)
        while size < self._max:
            remaining = deadline - loop.time()
            try:
                item = self._queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self._queue.get(),
                                                                                               remaining)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if size + len(item.texts) > self._max:
                self._concurrent = True
                return batch, item
            batch.append(item)
            size += len(item.texts)
        self._concurrent = len(batch) > 1
        return batch, None

    def retire(self, model: LoadedModel) -> None:
        """Release a replaced model now, or after the micro-batch in flight (which may still use it)."""
        if model.release is None:
            return
        self._retired.append(model)
        if not self._busy:
            self._releasing = asyncio.get_running_loop().create_task(self._release_retired())

    async def _release_retired(self) -> None:
        while self._retired:
            model = self._retired.pop()
            try:
                await asyncio.to_thread(model.release)  # type: ignore[arg-type]
            except Exception:
                log.exception("Releasing replaced model %s version %s failed", model.name, model.version)

    async def _process(self, batch: list[_Pending]) -> None:
        model = self._current_model()  # read once: a reload swaps models between micro-batches only
        if model is None:
            self._fail(batch, PredictionFailed(503, "No model is loaded yet; retry shortly"))
            return
        self._busy = True
        try:
            results = await asyncio.to_thread(self._predict_and_capture, model, batch)
        except Exception as exc:
            log.exception("Prediction failed for a micro-batch of %d request(s)", len(batch))
            self._fail(batch, PredictionFailed(500, f"Prediction failed: {type(exc).__name__}: {exc}"))
            return
        finally:
            self._busy = False
            await self._release_retired()
        for pending, records in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result((model, records))

    @staticmethod
    def _fail(batch: list[_Pending], error: PredictionFailed) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)

    def _predict_and_capture(self, model: LoadedModel, batch: list[_Pending]) -> list[list[TrafficRecord]]:
        """Run one predict call, build the records, then capture them (runs in a worker thread)."""
        texts = [t for pending in batch for t in pending.texts]
        predictions = model.predictor.predict(texts)
        if len(predictions.labels) != len(texts):
            raise ValueError(f"predictor returned {len(predictions.labels)} predictions for {len(texts)} texts")
        done, now = time.perf_counter(), datetime.now(UTC)
        confidences = predictions.confidences.tolist()
        embeddings = predictions.embeddings.tolist()
        results, offset = [], 0
        threshold = model.abstention.threshold if model.abstention is not None else 0.0
        for pending in batch:
            latency_ms = (done - pending.received_at) * 1000.0
            results.append([
                TrafficRecord(uuid.uuid4().hex, now, text, predictions.labels[offset + i], confidences[offset + i],
                              model.name, model.version, latency_ms, embeddings[offset + i],
                              abstained=confidences[offset + i] < threshold)
                for i, text in enumerate(pending.texts)
            ])
            offset += len(pending.texts)
        self._capture([r for records in results for r in records])
        return results

    def _capture(self, records: list[TrafficRecord]) -> None:
        """Hand records (PII-redacted when configured) to the writer; it raises only when they were not captured (then
        the requests get 500). The model saw the original text; only the stored copy is redacted."""
        if self._redact:
            from modelops.core.data.curate import redact_pii

            records = [dataclasses.replace(r, text=redact_pii(r.text)[0]) for r in records]
        self._writer.append(records)


# ---------------------------------------------------------------- the service


class ServedCustomisation:
    """One customisation's champion in the server: its endpoint, the loaded model, its batcher."""

    def __init__(self, name: str, endpoint: Endpoint, config: ServingConfig) -> None:
        self.name = name
        self.endpoint = endpoint
        self.model: LoadedModel | None = None
        self.loaded_at: datetime | None = None
        self.batcher = MicroBatcher(lambda: self.model, endpoint.writer, config)
        self.probe_failing_since: datetime | None = None  # set while the champion's registry cannot be reached

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    async def load(self, reason: str) -> bool:
        """Load the champion in a thread and swap it in; on failure log and keep the current model."""
        started = time.perf_counter()
        try:
            model = await asyncio.to_thread(self.endpoint.load_model)
        except Exception:
            log.exception("Loading %s's model (%s) failed; still serving version %s", self.name, reason, self.version)
            return False
        previous = self.model
        self.model, self.loaded_at = model, datetime.now(UTC)  # on the event loop, no await between: atomic
        if previous is not None:
            self.batcher.retire(previous)
        log.info("%s: loaded model %s version %s (%s, was %s) in %.1fs", self.name, model.name, model.version, reason,
                 previous.version if previous else None, time.perf_counter() - started)
        return True

    async def check_for_new_version(self) -> bool:
        """Reload when the champion alias points at another version than the one served; True if reloaded."""
        try:
            version = await asyncio.to_thread(self.endpoint.probe_version)
        except Exception as exc:  # the traceback once per outage, then one line per failed probe
            if self.probe_failing_since is None:
                self.probe_failing_since = datetime.now(UTC)
                log.exception("Probing %s's champion version failed; keeping version %s", self.name, self.version)
            else:
                log.warning("Probing %s's champion version failed; keeping version %s (failing since %s: %s)",
                            self.name, self.version, f"{self.probe_failing_since:%H:%M:%S}", exc)
            return False
        if self.probe_failing_since is not None:
            log.info("Probing %s's champion version works again (failed since %s)", self.name,
                     f"{self.probe_failing_since:%H:%M:%S}")
            self.probe_failing_since = None
        if version is None or version == self.version:
            return False
        return await self.load(f"champion moved to version {version}")


class PredictionService:
    """The served customisations and the background tasks; its methods are the HTTP endpoints."""

    def __init__(self, endpoints: dict[str, Endpoint], config: ServingConfig) -> None:
        if not endpoints:
            raise ServingConfigError("nothing to serve: no customisation given")
        self.config = config
        self.served = {name: ServedCustomisation(name, endpoint, config) for name, endpoint in endpoints.items()}

    # ------------------------------------------------------------ lifecycle

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Load the models, start the batchers, reload and flush tasks; on shutdown stop them and close the writers."""
        await asyncio.gather(*(served.load("start-up") for served in self.served.values()))
        for served in self.served.values():
            served.batcher.start()
        tasks = [asyncio.create_task(self._reload_loop(), name="model-reload"),
                 asyncio.create_task(self._flush_loop(), name="traffic-flush")]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for served in self.served.values():
                await served.batcher.stop()
                await asyncio.to_thread(served.endpoint.writer.close)
            log.info("Serving stopped; traffic writers closed")

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload_poll_seconds)
            await self.check_for_new_version()

    async def check_for_new_version(self) -> bool:
        """Check every customisation's champion alias, reloading each that moved; True if any reloaded."""
        reloaded = await asyncio.gather(*(served.check_for_new_version() for served in self.served.values()))
        return any(reloaded)

    async def _flush_loop(self) -> None:
        writers = [served.endpoint.writer for served in self.served.values()]
        interval = max(0.05, min(1.0, min(w.max_age_seconds for w in writers) / 2))
        while True:
            await asyncio.sleep(interval)
            for writer in writers:
                try:
                    await asyncio.to_thread(writer.flush_if_due)
                except Exception:
                    log.exception("Periodic traffic flush failed; records stay buffered")

    # ------------------------------------------------------------ endpoints

    def _authorized(self, request: Request) -> bool:
        token = self.config.bearer_token
        if token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())

    def _customisation(self, request: Request) -> ServedCustomisation:
        name = request.path_params.get("customisation")
        if name is None and len(self.served) == 1:
            return next(iter(self.served.values()))
        if name not in self.served:
            known = ", ".join(sorted(self.served))
            raise RequestError(404, f"Unknown customisation {name!r}; served: {known}" if name is not None
                               else f"Several customisations are served; name one: /predict/<customisation> ({known})")
        return self.served[name]

    async def health(self, request: Request) -> Response:
        """200 when every customisation has a model loaded, 503 before; the served versions."""
        versions = {name: served.version for name, served in self.served.items()}
        ready = all(version is not None for version in versions.values())
        return JSONResponse({"status": "ok" if ready else "loading", "model_versions": versions},
                            status_code=200 if ready else 503)

    async def model_info(self, request: Request) -> Response:
        """Name, version, base hash and load time of a customisation's served model."""
        if not self._authorized(request):
            return _error(401, "Missing or invalid bearer token (Authorization: Bearer <token>)")
        try:
            served = self._customisation(request)
        except RequestError as exc:
            return _error(exc.status, exc.message)
        model, loaded_at = served.model, served.loaded_at
        if model is None or loaded_at is None:
            return _error(503, "No model is loaded yet; retry shortly")
        return JSONResponse({"customisation": served.name, "name": model.name, "version": model.version,
                             "base_sha256": model.base_sha256, "loaded_at": loaded_at.isoformat(),
                             "abstention": model.abstention.__dict__ if model.abstention is not None else None})

    async def predict(self, request: Request) -> Response:
        """Validate, queue for the customisation's micro-batcher, answer one prediction per text."""
        received_at = time.perf_counter()
        if not self._authorized(request):
            return _error(401, "Missing or invalid bearer token (Authorization: Bearer <token>)")
        try:
            served = self._customisation(request)
            texts = parse_texts(await read_body(request, self.config.max_body_bytes), self.config)
        except RequestError as exc:
            return _error(exc.status, exc.message)
        if served.model is None:
            return _error(503, "No model is loaded yet; retry shortly")
        try:
            model, records = await served.batcher.submit(texts, received_at)
        except PredictionFailed as exc:
            return _error(exc.status, exc.message)
        fallback = model.abstention.fallback_label if model.abstention is not None else None
        return JSONResponse({
            "predictions": [{"id": r.id, "label": fallback if r.abstained else r.predicted_label,
                             "predicted_label": r.predicted_label, "abstained": r.abstained,
                             "confidence": r.confidence, "model_version": r.model_version} for r in records],
            "model_version": model.version,
        })


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(endpoints: dict[str, Endpoint], config: ServingConfig) -> Starlette:
    """The Starlette app: POST /predict[/<customisation>], GET /model[/<customisation>], GET /health; the lifespan
    loads the models and runs the loops."""
    service = PredictionService(endpoints, config)
    app = Starlette(
        routes=[Route("/predict", service.predict, methods=["POST"]),
                Route("/predict/{customisation}", service.predict, methods=["POST"]),
                Route("/health", service.health, methods=["GET"]),
                Route("/model", service.model_info, methods=["GET"]),
                Route("/model/{customisation}", service.model_info, methods=["GET"])],
        exception_handlers={HTTPException: _http_error},
        lifespan=service.lifespan,
    )
    app.state.service = service
    return app


def run_server(app: Starlette, config: ServingConfig) -> None:
    """Serve with uvicorn until SIGINT/SIGTERM; graceful shutdown drains requests, then flushes the writer."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, lifespan="on",
                                           timeout_graceful_shutdown=30, log_level="info"))
    server.run()
