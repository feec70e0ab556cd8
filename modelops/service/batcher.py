"""Micro-batching: requests queued within a few milliseconds share one predict call of the loaded champion."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelops.core.monitoring.traffic_writer import TrafficRecord, TrafficWriter
from modelops.service.requests import ServingConfig

if TYPE_CHECKING:
    from modelops.core.evaluation.abstention import ServedAbstention

log = logging.getLogger(__name__)


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
    variant: str = "pytorch"  # the runtime serving it: pytorch, onnx-fp32 or onnx-int8
    variant_reason: str = ""  # why that one (the evaluation's choice, or the fallback's cause)


ModelLoader = Callable[[], LoadedModel]
VersionProbe = Callable[[], str | None]


class PredictionFailed(Exception):
    """The model raised (or no model was loaded) for a micro-batch."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Pending:
    """One request waiting in the queue: its texts (prompts, for generation), when it arrived, its answer-to-be."""

    texts: list[str]
    received_at: float  # time.perf_counter() when the request arrived
    future: asyncio.Future[tuple[LoadedModel, list[Any]]]
    max_new_tokens: int = 0  # generation only: the longest response this request accepts


class MicroBatcher:
    """Groups queued requests into micro-batches; one predict call per micro-batch, in a worker thread.

    It waits up to micro_batch_wait_ms for more requests only while requests are arriving concurrently (the last
    micro-batch held more than one); a lone client is answered without that wait.
    """

    REDACTED_FIELDS: tuple[str, ...] = ("text",)  # what `redact_traffic` redacts in the captured records

    def __init__(self, current_model: Callable[[], LoadedModel | None], writer: TrafficWriter,
                 config: ServingConfig) -> None:
        self._current_model = current_model
        self._writer = writer
        self._redact = config.redact_traffic
        self._max = config.micro_batch_max
        self._wait = config.micro_batch_wait_ms / 1000.0
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
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

    async def submit(self, texts: list[str], received_at: float,
                     max_new_tokens: int = 0) -> tuple[LoadedModel, list[Any]]:
        """Queue texts; return the model that served them and one captured record per text."""
        future: asyncio.Future[tuple[LoadedModel, list[Any]]] = asyncio.get_running_loop().create_future()
        await self._queue.put(Pending(texts, received_at, future, max_new_tokens))
        return await future

    async def _run(self) -> None:
        carry: Pending | None = None
        while True:
            first = carry if carry is not None else await self._queue.get()
            batch, carry = await self._collect(first)
            try:
                await self._process(batch)
            except Exception:  # never let the worker die
                log.exception("Micro-batch worker error")

    async def _collect(self, first: Pending) -> tuple[list[Pending], Pending | None]:
        """Add queued requests to `first` until micro_batch_max texts or micro_batch_wait_ms; whole requests only."""
        loop = asyncio.get_running_loop()
        wait = self._fill_wait() if self._concurrent else 0.0
        batch, size, deadline = [first], len(first.texts), loop.time() + wait
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

    async def _in_worker(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a micro-batch's prediction off the event loop (a thread of the default executor)."""
        return await asyncio.to_thread(function, *args)

    def _fill_wait(self) -> float:
        """Seconds to wait for more requests while they arrive concurrently: micro_batch_wait_ms."""
        return self._wait

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

    async def _process(self, batch: list[Pending]) -> None:
        model = self._current_model()  # read once: a reload swaps models between micro-batches only
        if model is None:
            self._fail(batch, PredictionFailed(503, "No model is loaded yet; retry shortly"))
            return
        self._busy = True
        try:
            results = await self._in_worker(self._predict_and_capture, model, batch)
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
    def _fail(batch: list[Pending], error: PredictionFailed) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)

    def _predict_and_capture(self, model: LoadedModel, batch: list[Pending]) -> list[list[TrafficRecord]]:
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

    def _capture(self, records: list[Any]) -> None:
        """Hand records (PII-redacted when configured) to the writer; it raises only when they were not captured (then
        the requests get 500). The model saw the original text; only the stored copy is redacted."""
        if self._redact:
            from modelops.core.data.curate import redact_pii

            records = [dataclasses.replace(r, **{f: redact_pii(getattr(r, f))[0] for f in self.REDACTED_FIELDS})
                       for r in records]
        self._writer.append(records)


# ---------------------------------------------------------------- the service
