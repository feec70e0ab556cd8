"""The drift sensor's decisions without Dagster: which batches a tick reads, when it checks, when it retrains."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from modelops.core.monitoring.drift_decision import (
    PendingDrift,
    SensorCursor,
    decide_run,
    plan_window,
    record_check,
    window_key,
)
from modelops.core.monitoring.retrain_policy import DAY_SECONDS, RetrainPolicy

B1, B2, B3 = "batch-1", "batch-2", "batch-3"
POLICY = RetrainPolicy(cooldown_minutes=10.0, max_retrains_per_day=2, full_retrain_severity="severe",
                       min_new_labels=100)
NOW = 1_000_000.0
WAITING = PendingDrift(window_key([B1]), "moderate", [B1], "run-1")


def _named(batch_id: str) -> bool:
    return batch_id.startswith("batch-")


def test_the_cursor_round_trips_through_json_and_reads_cursors_written_before_report_runs() -> None:
    cursor = SensorCursor(B2, [NOW - 60], WAITING, 150)
    assert SensorCursor.from_json(cursor.to_json()) == cursor
    assert SensorCursor.from_json(None) == SensorCursor()
    legacy = {"last_batch": B1, "retrains": [], "labels_used": 3,
              "pending_drift": {"key": "drift-x", "severity": "severe", "batches": [B1]}}
    assert SensorCursor.from_json(json.dumps(legacy)).pending_drift == PendingDrift("drift-x", "severe", [B1], "")


def test_a_tick_reads_the_batches_after_the_cursor_and_every_file_not_named_by_the_writer() -> None:
    assert SensorCursor(B1).new_batches([B1, B2, "dropped-in.parquet", B3], _named) == [B2, "dropped-in.parquet", B3]
    assert SensorCursor().new_batches([B1], _named) == [B1]


@pytest.mark.parametrize(("usable", "rows", "pending", "problem", "check", "reason"), [
    ([], 0, None, None, False, "no usable new traffic"),
    ([B1], 500, None, "no drift reference for champion 1 yet", False, "no drift reference for champion 1 yet"),
    ([B1], 150, None, None, False, "waiting for traffic: 150/200 rows in 1 new batch(es)"),
    ([B1], 200, None, None, True, None),
    ([B1], 150, WAITING, None, False, None),  # too small to check, but the waiting drift may start a run now
    ([], 0, WAITING, None, False, None),
])
def test_plan_window(usable, rows, pending, problem, check, reason) -> None:
    plan = plan_window(SensorCursor(pending_drift=pending), [B1], usable, rows, 200, problem)
    assert (plan.check, plan.skip_reason) == (check, reason)


def test_the_cursor_moves_past_unusable_batches_before_the_first_usable_one() -> None:
    assert plan_window(SensorCursor(), [B1, B2, B3], [B3], 10, 200, None).cursor.last_batch == B2
    assert plan_window(SensorCursor(), [B1, B2, B3], [B2], 10, 200, None).cursor.last_batch == B1
    assert plan_window(SensorCursor(), [B1, B2], [], 0, 200, None).cursor.last_batch == B2


def test_a_window_without_retrain_worthy_drift_ends_the_tick_unless_drift_is_waiting() -> None:
    cursor, reason = record_check(SensorCursor(), [B1, B2], [B1, B2], "moderate", False, "run-2")
    assert cursor == SensorCursor(B2) and reason == f"{window_key([B1, B2])}: drift severity 'moderate' does not " \
                                                    "call for retraining"
    cursor, reason = record_check(SensorCursor(B1, pending_drift=WAITING), [B2], [B2], "none", False, "run-2")
    assert reason is None and cursor.pending_drift == WAITING and cursor.last_batch == B2


def test_drifted_windows_join_the_waiting_drift_with_the_higher_severity() -> None:
    cursor, reason = record_check(SensorCursor(B1, pending_drift=WAITING), [B2, B3], [B2, B3], "severe", True, "run-2")
    assert reason is None
    assert cursor.pending_drift == PendingDrift(window_key([B1, B2, B3]), "severe", [B1, B2, B3], "run-2")
    cursor, _ = record_check(replace(cursor, pending_drift=replace(WAITING, severity="severe")), [B3], [B3],
                             "moderate", True, "run-3")
    assert cursor.pending_drift.severity == "severe"


@pytest.mark.parametrize(("labels", "retrains", "mode", "reason_part"), [
    (140, [], None, "awaits labels: 90/100"),
    (150, [], "incremental", ""),
    (150, [NOW - 60], None, "cooldown"),
    (150, [NOW - 3600, NOW - 7200], None, "budget"),
    (150, [NOW - DAY_SECONDS - 1, NOW - 3600], "incremental", ""),  # a run older than a day no longer counts
])
def test_decide_run(labels, retrains, mode, reason_part) -> None:
    cursor = SensorCursor(B1, retrains, WAITING, labels_used=50)
    after, decision, drift = decide_run(cursor, labels, NOW, POLICY)
    assert decision.mode == mode and reason_part in decision.reason and drift == WAITING
    if mode is None:
        assert after == cursor
        assert decision.needs_labels == (reason_part.startswith("awaits"))
    else:
        assert after.pending_drift is None and after.labels_used == labels
        assert after.retrains == [t for t in retrains if NOW - t < DAY_SECONDS] + [NOW]


def test_severe_drift_asks_for_a_full_retrain() -> None:
    _, decision, _ = decide_run(SensorCursor(pending_drift=replace(WAITING, severity="severe")), 100, NOW, POLICY)
    assert decision.mode == "full"


def test_deciding_without_a_waiting_drift_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="pending drift"):
        decide_run(SensorCursor(), 100, NOW, POLICY)
