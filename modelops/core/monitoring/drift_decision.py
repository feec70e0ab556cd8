"""The drift sensor's state machine as pure functions over its cursor.

A tick reads the batches after the cursor, decides whether the new window is big enough to check, records what the
check found (a drifted window waits in the cursor until enough new labels arrive) and decides whether a retraining
run starts now. The Dagster sensor does the reading, checking and reporting; every decision is made here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from modelops.core.monitoring.retrain_policy import (
    DAY_SECONDS,
    SEVERITIES,
    RetrainDecision,
    RetrainPolicy,
    decide_retrain,
)


def window_key(batch_ids: list[str]) -> str:
    """Stable fingerprint of a window of batches: the run_key of any run it triggers."""
    return "drift-" + hashlib.sha256("\n".join(sorted(batch_ids)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PendingDrift:
    """Drifted batches that call for retraining, waiting for labels or for the storm guards."""

    key: str
    severity: str
    batches: list[str]
    report_run: str = ""  # the MLflow run holding the Evidently report of the latest drifted window


@dataclass(frozen=True)
class SensorCursor:
    """What the drift sensor remembers between ticks (stored as JSON in Dagster's cursor)."""

    last_batch: str = ""  # the newest batch checked, or passed over as unusable
    retrains: list[float] = field(default_factory=list)  # when runs were requested in the last 24 h (epoch seconds)
    pending_drift: PendingDrift | None = None
    labels_used: int = 0  # labelled feedback rows there were when the last run was requested

    @classmethod
    def from_json(cls, text: str | None) -> SensorCursor:
        values = json.loads(text) if text else {}
        pending = values.get("pending_drift")
        return cls(values.get("last_batch", ""), list(values.get("retrains", [])),
                   PendingDrift(**pending) if pending else None, int(values.get("labels_used", 0)))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def new_batches(self, batch_ids: list[str], is_batch_id: Callable[[str], bool]) -> list[str]:
        """Batches this tick reads: those after the cursor, and files not named as the writer names them (they do
        not sort by time, so they are always screened and never held by the cursor)."""
        return [b for b in batch_ids if not is_batch_id(b) or b > self.last_batch]


@dataclass(frozen=True)
class WindowPlan:
    """What a tick does with its new traffic: check it for drift, go straight to the retrain decision, or stop."""

    cursor: SensorCursor
    check: bool = False
    skip_reason: str | None = None


def plan_window(cursor: SensorCursor, ordered: list[str], usable: list[str], rows: int, min_rows: int,
                reference_problem: str | None) -> WindowPlan:
    """Decide on the new window: `ordered` are the new writer-named batches, `usable` the readable ones (in order),
    `rows` their valid rows. Unusable batches before the first usable one are done with: the cursor moves past them."""
    last_batch = cursor.last_batch
    for batch_id in ordered:
        if batch_id in usable:
            break
        last_batch = batch_id
    cursor = replace(cursor, last_batch=last_batch)
    waiting = cursor.pending_drift is not None
    if not usable and not waiting:
        return WindowPlan(cursor, skip_reason="no usable new traffic")
    if reference_problem:
        return WindowPlan(cursor, skip_reason=reference_problem)
    if usable and rows < min_rows and not waiting:
        return WindowPlan(cursor, skip_reason=f"waiting for traffic: {rows}/{min_rows} rows in {len(usable)} new "
                                              "batch(es)")
    return WindowPlan(cursor, check=bool(usable) and rows >= min_rows)


def record_check(cursor: SensorCursor, ordered: list[str], usable: list[str], severity: str, recommended: bool,
                 report_run: str) -> tuple[SensorCursor, str | None]:
    """The cursor after checking the window of `usable` batches, and a skip reason when nothing more is to decide.

    A window that calls for retraining joins the pending drift (its batches added, the higher severity kept)."""
    cursor = replace(cursor, last_batch=ordered[-1])
    if not recommended:
        if cursor.pending_drift is None:
            return cursor, f"{window_key(usable)}: drift severity '{severity}' does not call for retraining"
        return cursor, None
    earlier = cursor.pending_drift or PendingDrift("", "none", [])
    batches = earlier.batches + usable
    pending = PendingDrift(window_key(batches), max(earlier.severity, severity, key=SEVERITIES.index), batches,
                           report_run)
    return replace(cursor, pending_drift=pending), None


def decide_run(cursor: SensorCursor, labels: int, now: float, policy: RetrainPolicy
               ) -> tuple[SensorCursor, RetrainDecision, PendingDrift]:
    """Whether the pending drift starts a run now (`labels`: labelled feedback rows there are). A run clears the
    pending drift and counts against the storm guards; otherwise the cursor is unchanged."""
    drift = cursor.pending_drift
    if drift is None:
        raise ValueError("decide_run needs a pending drift")
    decision = decide_retrain(drift.severity, True, cursor.retrains, now, policy, labels - cursor.labels_used)
    if decision.mode is None:
        return cursor, decision, drift
    recent = [t for t in cursor.retrains if now - t < DAY_SECONDS]
    return replace(cursor, retrains=[*recent, now], labels_used=labels, pending_drift=None), decision, drift
