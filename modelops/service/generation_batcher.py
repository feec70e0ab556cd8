"""Micro-batching for a generative customisation: prompts of concurrent requests share one `generate` call of the
champion (greedy decoding, so a prompt gets the same response alone or batched), and each response is captured with
its latency, token counts, mean token log-probability and prompt embedding."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from modelops.core.monitoring.traffic_writer import GenerationRecord
from modelops.service.batcher import LoadedModel, MicroBatcher, Pending


class GenerationBatcher(MicroBatcher):
    """A MicroBatcher whose model is a ServedGenerator (core.serving.generation); a micro-batch runs to the longest
    limit among its requests and cuts each response at its own request's."""

    REDACTED_FIELDS = ("prompt", "response")

    def _predict_and_capture(self, model: LoadedModel, batch: list[Pending]) -> list[list[GenerationRecord]]:
        """Run one generate call, build the records, then capture them (runs in a worker thread)."""
        prompts = [p for pending in batch for p in pending.texts]
        limits = [pending.max_new_tokens for pending in batch for _ in pending.texts]
        generations = model.predictor.generate(prompts, limits)
        if len(generations) != len(prompts):
            raise ValueError(f"generator returned {len(generations)} responses for {len(prompts)} prompts")
        done, now = time.perf_counter(), datetime.now(UTC)
        results, offset = [], 0
        for pending in batch:
            latency_ms = (done - pending.received_at) * 1000.0
            answered = generations[offset:offset + len(pending.texts)]
            results.append([
                GenerationRecord(uuid.uuid4().hex, now, prompt, g.text, model.name, model.version, latency_ms,
                                 g.prompt_tokens, g.response_tokens, g.mean_logprob, g.finished, g.embedding or [])
                for prompt, g in zip(pending.texts, answered, strict=True)
            ])
            offset += len(pending.texts)
        self._capture([r for records in results for r in records])
        return results
