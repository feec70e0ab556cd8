"""The prediction HTTP service: validated requests (service.requests), micro-batched inference (service.batcher),
traffic capture and hot reload.

It serves one or more customisations, each with its own champion, batcher, traffic writer and reload: `POST
/predict/<customisation>` (a classifier's), `POST /generate/<customisation>` (a causal LM's: `{"prompt": ...}` or
`{"prompts": [...]}`, optionally `"max_new_tokens"` up to the served limit) and `GET /model/<customisation>`; the
routes name none when only one is served.

Listens on 127.0.0.1 unless configured otherwise (then only with a bearer token); with `redact_traffic`, PII is
replaced in captured texts before they are written.

Status codes: 400 invalid JSON or Content-Length; 401 missing/wrong bearer token; 404 unknown customisation (or none
named while several are served); 413 any size limit (body bytes,
texts per request, characters per text); 422 wrong shape or types (not an object, neither/both of `text` and
`texts`, unknown fields, non-string or empty text, empty list, max_new_tokens out of range); 500 the model failed;
503 no model loaded yet; 504 responses not generated within generation_timeout_seconds.
Every error body is `{"error": "<message>"}` and nothing is captured for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelops.core.monitoring.traffic_writer import TrafficWriter
from modelops.service.batcher import LoadedModel, MicroBatcher, ModelLoader, PredictionFailed, VersionProbe
from modelops.service.generation_batcher import GenerationBatcher
from modelops.service.requests import (
    RequestError,
    ServingConfig,
    ServingConfigError,
    parse_prompts,
    parse_texts,
    read_body,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    """What serves one customisation: how to load its champion, which version is champion now, where traffic goes."""

    load_model: ModelLoader
    probe_version: VersionProbe
    writer: TrafficWriter
    generative: bool = False  # a causal LM (POST /generate, its predictor a ServedGenerator), not a classifier


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class ServedCustomisation:
    """One customisation's champion in the server: its endpoint, the loaded model, its batcher."""

    def __init__(self, name: str, endpoint: Endpoint, config: ServingConfig) -> None:
        self.name = name
        self.endpoint = endpoint
        self.model: LoadedModel | None = None
        self.loaded_at: datetime | None = None
        batcher = GenerationBatcher if endpoint.generative else MicroBatcher
        self.batcher = batcher(lambda: self.model, endpoint.writer, config)
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
        log.info("%s: loaded model %s version %s as %s (%s, was %s) in %.1fs", self.name, model.name, model.version,
                 model.variant, reason, previous.version if previous else None, time.perf_counter() - started)
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

    def _customisation(self, request: Request, route: str = "") -> ServedCustomisation:
        """The customisation the request names (or the only one); with `route` ("predict" or "generate"), 404 unless
        it is served there."""
        name = request.path_params.get("customisation")
        if name is None and len(self.served) == 1:
            served = next(iter(self.served.values()))
        elif name not in self.served:
            known = ", ".join(sorted(self.served))
            raise RequestError(404, f"Unknown customisation {name!r}; served: {known}" if name is not None
                               else f"Several customisations are served; name one: /{route or 'model'}/<customisation> "
                                    f"({known})")
        else:
            served = self.served[name]
        if route and (route == "generate") != served.endpoint.generative:
            other = "predict" if route == "generate" else "generate"
            raise RequestError(404, f"{served.name} is served at POST /{other}/{served.name}, not /{route}")
        return served

    async def health(self, request: Request) -> Response:
        """200 when every customisation has a model loaded, 503 before; the served versions."""
        versions = {name: served.version for name, served in self.served.items()}
        ready = all(version is not None for version in versions.values())
        return JSONResponse({"status": "ok" if ready else "loading", "model_versions": versions},
                            status_code=200 if ready else 503)

    async def model_info(self, request: Request) -> Response:
        """Name, version, base hash, load time and serving variant (and why) of a customisation's served model."""
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
                             "variant": model.variant, "variant_reason": model.variant_reason,
                             "abstention": model.abstention.__dict__ if model.abstention is not None else None})

    async def predict(self, request: Request) -> Response:
        """Validate, queue for the customisation's micro-batcher, answer one prediction per text."""
        received_at = time.perf_counter()
        if not self._authorized(request):
            return _error(401, "Missing or invalid bearer token (Authorization: Bearer <token>)")
        try:
            served = self._customisation(request, "predict")
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


    async def generate(self, request: Request) -> Response:
        """Validate, queue for the customisation's generation batcher, answer one response per prompt."""
        received_at = time.perf_counter()
        if not self._authorized(request):
            return _error(401, "Missing or invalid bearer token (Authorization: Bearer <token>)")
        try:
            served = self._customisation(request, "generate")
            loaded = served.model
            if loaded is None:
                return _error(503, "No model is loaded yet; retry shortly")
            prompts, limit = parse_prompts(await read_body(request, self.config.max_body_bytes), self.config,
                                           loaded.predictor.max_new_tokens)
        except RequestError as exc:
            return _error(exc.status, exc.message)
        try:
            model, records = await asyncio.wait_for(served.batcher.submit(prompts, received_at, limit),
                                                    self.config.generation_timeout_seconds)
        except TimeoutError:
            return _error(504, f"No response within {self.config.generation_timeout_seconds:g} s; retry, or ask for "
                               "fewer prompts or a smaller max_new_tokens")
        except PredictionFailed as exc:
            return _error(exc.status, exc.message)
        return JSONResponse({
            "responses": [{"id": r.id, "response": r.response, "prompt_tokens": r.prompt_tokens,
                           "response_tokens": r.response_tokens, "mean_logprob": r.mean_logprob,
                           "finished": r.finished} for r in records],
            "model_version": model.version,
        })


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(endpoints: dict[str, Endpoint], config: ServingConfig) -> Starlette:
    """The Starlette app: POST /predict[/<customisation>], POST /generate[/<customisation>], GET
    /model[/<customisation>], GET /health; the lifespan loads the models and runs the loops."""
    service = PredictionService(endpoints, config)
    app = Starlette(
        routes=[Route("/predict", service.predict, methods=["POST"]),
                Route("/predict/{customisation}", service.predict, methods=["POST"]),
                Route("/generate", service.generate, methods=["POST"]),
                Route("/generate/{customisation}", service.generate, methods=["POST"]),
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
