"""Micro-batching for a generative customisation: prompts of concurrent requests share one `generate` call of the
champion (greedy decoding, so a prompt gets the same response alone or batched), and each response is captured with
its latency, token counts, mean token log-probability and prompt embedding. The model is given each prompt as curation
gave it to training (`instructions.clean_prompt`: normalised, PII redacted), and that is the prompt captured."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from modelops.core.data.instructions import clean_prompt
from modelops.core.monitoring.traffic_writer import GenerationRecord
from modelops.service.batcher import LoadedModel, MicroBatcher, Pending

FILL_WAIT_SHARE = 0.1  # while requests arrive concurrently, wait up to this share of the last generate call's time


class GenerationBatcher(MicroBatcher):
    """A MicroBatcher whose model is a ServedGenerator (core.serving.generation); a micro-batch runs to the longest
    limit among its requests and cuts each response at its own request's.

    A generate call takes hundreds of milliseconds, so the clients answered by one call send their next prompts while
    the queue already holds others': with the classifier's few-millisecond wait the batches would alternate between
    two groups (measured at 8 closed-loop clients: micro-batches of 1 and 7, in turn). While requests arrive
    concurrently it waits up to FILL_WAIT_SHARE of the last call's duration (at least micro_batch_wait_ms), so they
    merge into one batch at a bounded cost in latency.
    """

    REDACTED_FIELDS = ("prompt", "response")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_call_seconds = 0.0
        # Every generate call on one thread of its own. Measured on 2 cores: once a second thread has run the model's
        # parallel (OpenMP) kernels, each generate call takes about twice as long (0.4 -> 1.0 s for 8 prompts of the
        # benchmark's model), and the default executor hands calls to whichever of its threads is idle.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generation")

    async def _in_worker(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, functools.partial(function, *args))

    async def stop(self) -> None:
        await super().stop()
        self._thread.shutdown(wait=True)

    def _fill_wait(self) -> float:
        return max(self._wait, FILL_WAIT_SHARE * self._last_call_seconds)

    def _predict_and_capture(self, model: LoadedModel, batch: list[Pending]) -> list[list[GenerationRecord]]:
        """Run one generate call, build the records, then capture them (runs in a worker thread)."""
        prompts = [clean_prompt(p) for pending in batch for p in pending.texts]  # as the model was trained on them
        limits = [pending.max_new_tokens for pending in batch for _ in pending.texts]
        started = time.perf_counter()
        generations = model.predictor.generate(prompts, limits)
        self._last_call_seconds = time.perf_counter() - started
        if len(generations) != len(prompts):
            raise ValueError(f"generator returned {len(generations)} responses for {len(prompts)} prompts")
        done, now = time.perf_counter(), datetime.now(UTC)
        results, offset = [], 0
        for pending in batch:
            latency_ms = (done - pending.received_at) * 1000.0
            answered = slice(offset, offset + len(pending.texts))
            results.append([
                GenerationRecord(uuid.uuid4().hex, now, prompt, g.text, model.name, model.version, latency_ms,
                                 g.prompt_tokens, g.response_tokens, g.mean_logprob, g.finished, g.embedding or [])
                for prompt, g in zip(prompts[answered], generations[answered], strict=True)
            ])
            offset += len(pending.texts)
        self._capture([r for records in results for r in records])
        return results
