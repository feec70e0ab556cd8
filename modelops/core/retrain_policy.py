"""Whether drift may start a retraining run now, and which kind: cooldown, daily budget, severity -> mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from modelops.core.labelling_queue import LabellingQueueError, check_queue_size

SEVERITIES = ("none", "moderate", "severe")
DAY_SECONDS = 24 * 3600.0


class RetrainPolicyError(ValueError):
    """The retrain policy file is invalid."""


@dataclass(frozen=True)
class RetrainPolicy:
    cooldown_minutes: float = 10.0
    max_retrains_per_day: int = 6
    full_retrain_severity: str = "severe"
    min_new_labels: int = 100
    labelling_queue_size: int = 100


@dataclass(frozen=True)
class RetrainDecision:
    mode: str | None  # "incremental" | "full" | None (no run)
    reason: str
    needs_labels: bool = False  # drift calls for retraining, but the new labels are too few: queue rows to label


def load_retrain_policy(path: Path) -> RetrainPolicy:
    values = yaml.safe_load(Path(path).read_text()) or {}
    known = set(RetrainPolicy.__dataclass_fields__)
    if not isinstance(values, dict) or set(values) - known:
        raise RetrainPolicyError(f"{path}: expected keys {sorted(known)}, got {values!r}")
    policy = RetrainPolicy(**values)
    try:
        check_queue_size(policy.labelling_queue_size)
    except LabellingQueueError as error:
        raise RetrainPolicyError(f"{path}: {error}") from None
    if policy.full_retrain_severity not in SEVERITIES[1:]:
        raise RetrainPolicyError(f"{path}: full_retrain_severity must be one of {SEVERITIES[1:]}")
    if policy.cooldown_minutes < 0 or policy.max_retrains_per_day < 1 or policy.min_new_labels < 0:
        raise RetrainPolicyError(f"{path}: cooldown_minutes and min_new_labels must be >= 0, max_retrains_per_day >= 1")
    return policy


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
    full = SEVERITIES.index(severity) >= SEVERITIES.index(policy.full_retrain_severity)
    return RetrainDecision("full" if full else "incremental", f"{severity} drift")
