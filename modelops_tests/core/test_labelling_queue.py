"""The labelling queue: uncertain rows spread across topics, held-back labels first, never a row twice, and a CSV
that comes back through data/feedback/ into the next curated set."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.core.config_files import ConfigError, load_config
from modelops.core.data.curate import curate
from modelops.core.data.feedback import labelled_feedback, read_feedback
from modelops.core.monitoring.labelling_queue import (
    QUEUE_COLUMNS,
    LabellingQueueError,
    check_queue_size,
    pending_needs,
    queued_ids,
    select_for_labelling,
    write_queue,
)
from modelops.core.monitoring.retrain_policy import RetrainPolicy
from modelops.core.monitoring.traffic import list_batches, read_batches
from modelops.core.monitoring.traffic_writer import TrafficRecord, TrafficWriter

DIM = 8


def _window(seed: int = 0) -> pd.DataFrame:
    """Three confident known topics (60 rows each) and two uncertain unknown ones (30 rows each), tight clusters."""
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM)[:5] * 4
    parts = []
    for topic, (rows, confidence) in enumerate([(60, 0.95), (60, 0.93), (60, 0.97), (30, 0.35), (30, 0.40)]):
        vectors = centres[topic] + rng.normal(0, 0.3, (rows, DIM))
        parts.append(pd.DataFrame({
            "id": [f"t{topic}-{i}" for i in range(rows)], "text": [f"topic {topic} request {i}" for i in range(rows)],
            "predicted_label": f"label{topic % 3}", "confidence": np.clip(confidence + rng.normal(0, 0.02, rows), 0, 1),
            "embedding": list(vectors), "topic": topic}))
    return pd.concat(parts, ignore_index=True)


def test_the_queue_takes_uncertain_rows_from_every_uncertain_topic() -> None:
    window = _window()
    queue = select_for_labelling(window, 6)
    assert list(queue.columns) == QUEUE_COLUMNS and len(queue) == 6
    topics = window.set_index("id").loc[queue["id"], "topic"]
    assert set(topics) == {3, 4}  # only the topics the model is unsure of...
    assert topics.value_counts().min() >= 2  # ...and both of them, not six near-copies of one
    assert queue["id"].is_unique and queue["cluster"].is_unique
    assert queue["confidence"].max() < 0.5


def test_rows_already_labelled_or_queued_are_never_queued_again(tmp_path: Path) -> None:
    window = _window()
    first = select_for_labelling(window, 10)
    write_queue(tmp_path, "batch-1", first)
    excluded = queued_ids(tmp_path) | {"t3-0", "t4-0"}
    second = select_for_labelling(window, 10, excluded)
    assert not set(second["id"]) & excluded
    assert queued_ids(tmp_path, except_file="batch-1.csv") == set()


def test_a_held_back_label_is_asked_for_first_with_the_rows_nearest_its_examples() -> None:
    window = _window()
    labelled = window[window["topic"] == 1].head(4)  # 4 captured requests already labelled with the new label
    feedback = pd.DataFrame({"id": labelled["id"], "label": "pto_balance"})
    needs = pending_needs(window, feedback, {"pto_balance": 3, "raw_only_label": 5})
    assert [need.label for need in needs] == ["pto_balance"]  # no captured example: no centre to search near
    queue = select_for_labelling(window, 8, set(feedback["id"]), needs)
    assert queue["cluster"].head(3).tolist() == ["pending:pto_balance"] * 3
    assert set(window.set_index("id").loc[queue["id"].head(3), "topic"]) == {1}
    assert not set(queue["id"]) & set(feedback["id"])
    assert len(queue) == 8 and set(window.set_index("id").loc[queue["id"].iloc[3:], "topic"]) == {3, 4}


@pytest.mark.parametrize("size", [0, -5, 10_001, True, 2.5, "100"])
def test_bad_queue_sizes_are_refused_with_a_clear_message(size: object, tmp_path: Path) -> None:
    with pytest.raises(LabellingQueueError, match="labelling_queue_size must be"):
        check_queue_size(size)
    policy = tmp_path / "retrain.yaml"
    policy.write_text(f"labelling_queue_size: {size!r}\n")
    with pytest.raises(ConfigError, match=r"retrain.yaml: labelling_queue_size: Input should be"):
        load_config(policy, RetrainPolicy)


def test_the_queue_csv_comes_back_through_feedback_into_the_next_curated_set(tmp_path: Path) -> None:
    window = _window()
    production, feedback_dir, labelling = tmp_path / "production", tmp_path / "feedback", tmp_path / "labelling"
    writer = TrafficWriter(production, max_rows=len(window) + 1)
    writer.append([TrafficRecord(uuid.uuid4().hex, datetime.now(UTC), row.text, row.predicted_label,
                                 float(row.confidence), "m", "1", 1.0, [float(v) for v in row.embedding])
                   for row in window.itertuples()])
    writer.close()
    captured = read_batches(production, list_batches(production))
    path = write_queue(labelling, list_batches(production)[0], select_for_labelling(captured, 5))
    # An annotator adds a label column (leaving one row out) and drops the file into data/feedback/.
    answered = pd.read_csv(path, dtype=str)
    answered["label"] = ["new_topic"] * 4 + [""]
    feedback_dir.mkdir()
    answered.to_csv(feedback_dir / path.name, index=False)
    feedback = read_feedback(feedback_dir)
    assert len(feedback.valid) == 4 and feedback.rejected["reason"].tolist() == ["missing_label"]
    raw = pd.DataFrame({"text": [f"known example {i}" for i in range(20)], "label": "label0", "source": "raw"})
    curated, _ = curate(raw, labelled_feedback(production, feedback.valid))
    joined = curated[curated["label"] == "new_topic"]
    assert sorted(joined["text"]) == sorted(answered["text"].head(4))
    assert joined["source"].str.startswith("feedback:batch-").all()
