"""A generative customisation's traffic as the drift check reads traffic.

Each captured response (GENERATION_SCHEMA) or held-out generation becomes a traffic row: `text` is the prompt,
`predicted_label` what the response decided (the decision field's value, or whether the output is usable),
`confidence` the response's mean token probability (exp of its mean token log-probability), `response_tokens` its
length and `embedding` the prompt's. The classifier's calibrated check then watches the prompts (text descriptors,
embedding) and the outputs (their decisions and format validity as a label distribution, their length, their
confidence as the label-free quality estimate), with thresholds calibrated on the champion's own held-out
generations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from modelops.core.evaluation.generation_evaluation import UNUSABLE, parse_object
from modelops.core.monitoring.traffic_writer import TRAFFIC_SCHEMA

if TYPE_CHECKING:
    from modelops.core.evaluation.evaluation_policy import GenerationPolicy
    from modelops.core.serving.generation import Generation

VALID_OUTPUT = "valid_output"  # json output without a decision field: the response parsed
FINISHED, CUT_OFF = "finished", "cut_off"  # text output: the response ended, or hit max_new_tokens


def response_label(response: str, finished: bool, policy: GenerationPolicy) -> str:
    """What a response decided, as drift compares it: with json output its decision field's string value (UNUSABLE
    when it is no JSON object or the value is missing), or VALID_OUTPUT without a decision field; with text output
    FINISHED or CUT_OFF."""
    if policy.output == "text":
        return FINISHED if finished else CUT_OFF
    value = parse_object(response)
    if value is None:
        return UNUSABLE
    if policy.decision_field is None:
        return VALID_OUTPUT
    decided = value.get(policy.decision_field)
    return decided if isinstance(decided, str) and decided else UNUSABLE


def token_probability(mean_logprob: float) -> float:
    """A response's mean token probability in [0, 1] (0 for a missing or non-finite log-probability)."""
    return float(np.clip(math.exp(mean_logprob), 0.0, 1.0)) if math.isfinite(mean_logprob) else 0.0


def generation_table_as_traffic(table: pa.Table, policy: GenerationPolicy) -> pa.Table:
    """A GENERATION_SCHEMA table (columns already checked) as a TRAFFIC_SCHEMA table, row for row."""
    columns = table.to_pydict()
    return pa.Table.from_pydict({
        "id": columns["id"], "timestamp": columns["timestamp"], "text": columns["prompt"],
        "predicted_label": [None if r is None else response_label(r, bool(f), policy)
                            for r, f in zip(columns["response"], columns["finished"], strict=True)],
        "confidence": [None if lp is None else token_probability(lp) for lp in columns["mean_logprob"]],
        "model_name": columns["model_name"], "model_version": columns["model_version"],
        "latency_ms": columns["latency_ms"], "embedding": columns["embedding"],
        "abstained": [False] * table.num_rows, "response_tokens": columns["response_tokens"],
    }, schema=TRAFFIC_SCHEMA)


def generation_reference(generations: Sequence[Generation], prompts: Sequence[str], references: Sequence[str],
                         train_prompts: Sequence[str], policy: GenerationPolicy) -> tuple[pd.DataFrame, frozenset[str]]:
    """The drift reference of a generative champion: its generations for held-out `prompts` as traffic rows, with
    the decision of each `references` response as the true label, and the vocabulary of the training prompts."""
    from modelops.core.monitoring.drift import TRUE_LABEL_COLUMN, build_vocabulary
    from modelops.core.monitoring.drift_config import LABEL_COLUMN, RESPONSE_TOKENS_COLUMN

    frame = pd.DataFrame({
        "text": list(prompts),
        LABEL_COLUMN: [response_label(g.text, g.finished, policy) for g in generations],
        "confidence": [token_probability(g.mean_logprob) for g in generations],
        RESPONSE_TOKENS_COLUMN: [g.response_tokens for g in generations],
        "embedding": [np.asarray(g.embedding, dtype=np.float32) for g in generations],
        TRUE_LABEL_COLUMN: [response_label(r, True, policy) for r in references],
    })
    return frame, build_vocabulary(train_prompts)
