"""Whether drift may start a retraining run now, and which kind: cooldown, daily budget, severity -> mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from modelops.core.config_files import PolicyModel
from modelops.core.monitoring.drift_config import SEVERITIES
from modelops.core.monitoring.labelling_queue import MAX_QUEUE_SIZE

DAY_SECONDS = 24 * 3600.0


class RetrainPolicy(PolicyModel):
    """When drift may start a retraining run (config/retrain.yaml)."""

    cooldown_minutes: float = Field(10.0, ge=0)
    max_retrains_per_day: int = Field(6, ge=1)
    full_retrain_severity: Literal["moderate", "severe"] = "severe"
    min_new_labels: int = Field(100, ge=0)
    labelling_queue_size: int = Field(100, ge=1, le=MAX_QUEUE_SIZE)


@dataclass(frozen=True)
class RetrainDecision:
    mode: str | None  # "incremental" | "full" | None (no run)
    reason: str
    needs_labels: bool = False  # drift calls for retraining, but the new labels are too few: queue rows to label


def decide_retrain(severity: str, recommended: bool, past_runs: list[float], now: float,
                   policy: RetrainPolicy, new_labels: int) -> RetrainDecision:
    """Pick the run mode for a drift result, or say why no run starts (no labels yet, storm guards)."""
    if not recommended:
        return RetrainDecision(None, f"drift severity '{severity}' does not call for retraining")
    if new_labels < policy.min_new_labels:
        return RetrainDecision(None, f"{severity} drift awaits labels: {new_labels}/{policy.min_new_labels} new "
                                     "labelled feedback rows in data/feedback/", needs_labels=True)
    recent = [t for t in past_runs if now - t < DAY_SECONDS]
    if recent and now - max(recent) < policy.cooldown_minutes * 60:
        wait = policy.cooldown_minutes * 60 - (now - max(recent))
        return RetrainDecision(None, f"cooldown: last drift retrain {now - max(recent):.0f}s ago, {wait:.0f}s to go")
    if len(recent) >= policy.max_retrains_per_day:
        return RetrainDecision(None, f"budget: {len(recent)} drift retrains in 24h (max {policy.max_retrains_per_day})")
    return RetrainDecision(retrain_mode(severity, policy), f"{severity} drift")


def retrain_mode(severity: str, policy: RetrainPolicy) -> str:
    """The run mode drift of `severity` calls for: full from `full_retrain_severity` up, else incremental."""
    full = SEVERITIES.index(severity) >= SEVERITIES.index(policy.full_retrain_severity)
    return "full" if full else "incremental"
