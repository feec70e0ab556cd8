"""TrafficWriter batches: atomic files, rotation by rows and age, schema round trip, concurrency, bad batches."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelops.core.evaluation.evaluation_policy import GenerationPolicy
from modelops.core.monitoring import traffic_writer
from modelops.core.monitoring.traffic import TrafficBatchError, list_batches, read_batches, validate_batch
from modelops.core.monitoring.traffic_writer import (
    GENERATION_SCHEMA,
    TRAFFIC_SCHEMA,
    GenerationRecord,
    TrafficRecord,
    TrafficWriter,
    TrafficWriterClosedError,
)


def make_records(n: int, text: str = "where is my parcel") -> list[TrafficRecord]:
    now = datetime.now(UTC)
    return [TrafficRecord(uuid.uuid4().hex, now, f"{text} {i}", "shipping", 0.75, "support-intent", "3", 12.5,
                          [0.25] * 32) for i in range(n)]


def test_round_trip_keeps_schema_and_values(tmp_path: Path) -> None:
    records = make_records(3)
    writer = TrafficWriter(tmp_path)
    writer.append(records)
    path = writer.flush()
    assert path is not None and path.parent == tmp_path
    assert pq.read_schema(path).remove_metadata().equals(TRAFFIC_SCHEMA)

    frame = read_batches(tmp_path, list_batches(tmp_path))
    assert list(frame.columns) == [*TRAFFIC_SCHEMA.names, "batch_id"]
    assert frame["id"].tolist() == [r.id for r in records]
    assert frame["text"].tolist() == [r.text for r in records]
    assert (frame["batch_id"] == path.stem).all()
    assert frame["timestamp"].iloc[0] == pd.Timestamp(records[0].timestamp)
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame["confidence"].iloc[0] == pytest.approx(0.75)
    assert list(frame["embedding"].iloc[0]) == [0.25] * 32


def test_file_names_sort_in_write_order(tmp_path: Path) -> None:
    writer = TrafficWriter(tmp_path, max_rows=1)
    records = make_records(20)
    for record in records:
        writer.append([record])
    batches = list_batches(tmp_path)
    assert len(batches) == 20
    assert all(b.startswith("batch-") and len(b.split("-")[1]) == len("yyyymmddTHHMMSSffffff") for b in batches)
    assert read_batches(tmp_path, batches)["id"].tolist() == [r.id for r in records]


def test_rotation_by_rows_splits_into_full_batches(tmp_path: Path) -> None:
    writer = TrafficWriter(tmp_path, max_rows=10, max_age_seconds=3600)
    writer.append(make_records(25))
    assert [len(read_batches(tmp_path, [b])) for b in list_batches(tmp_path)] == [10, 10]
    assert writer.buffered_rows == 5
    assert writer.flush_if_due() is None  # 5 rows, young: not due
    writer.close()
    assert [len(read_batches(tmp_path, [b])) for b in list_batches(tmp_path)] == [10, 10, 5]


def test_rotation_by_age(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]  # the writer's monotonic clock, moved by hand
    monkeypatch.setattr(traffic_writer, "time", SimpleNamespace(monotonic=lambda: now[0]))
    writer = TrafficWriter(tmp_path, max_rows=1000, max_age_seconds=60)
    writer.append(make_records(2))
    now[0] += 59.9
    assert writer.flush_if_due() is None and list_batches(tmp_path) == []
    now[0] += 0.1
    assert writer.flush_if_due() is not None
    assert len(read_batches(tmp_path, list_batches(tmp_path))) == 2

    writer.append(make_records(1))
    now[0] += 60
    writer.append(make_records(1))  # append notices the age too
    assert len(list_batches(tmp_path)) == 2 and writer.buffered_rows == 0


def test_close_flushes_and_refuses_more(tmp_path: Path) -> None:
    writer = TrafficWriter(tmp_path)
    writer.append(make_records(4))
    writer.close()
    writer.close()
    assert len(read_batches(tmp_path, list_batches(tmp_path))) == 4
    with pytest.raises(TrafficWriterClosedError):
        writer.append(make_records(1))


def test_record_that_does_not_fit_is_rejected_before_buffering(tmp_path: Path) -> None:
    writer = TrafficWriter(tmp_path)
    with pytest.raises(ValueError, match="TRAFFIC_SCHEMA"):
        writer.append(make_records(1, text="\ud800"))  # lone surrogate: not UTF-8
    assert writer.buffered_rows == 0


def test_failed_write_leaves_no_visible_file_and_keeps_rows(tmp_path: Path, monkeypatch) -> None:
    writer = TrafficWriter(tmp_path, max_rows=5)

    def half_write(table: pa.Table, where: Path) -> None:
        Path(where).write_bytes(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(traffic_writer.pq, "write_table", half_write)
    writer.append(make_records(5))  # due now; the write fails, append still captures
    assert writer.buffered_rows == 5
    assert list(tmp_path.iterdir()) == []  # no partial batch, no temp file left behind
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    monkeypatch.undo()
    writer.close()
    assert len(read_batches(tmp_path, list_batches(tmp_path))) == 5


def test_list_batches_ignores_temp_and_foreign_files(tmp_path: Path) -> None:
    writer = TrafficWriter(tmp_path)
    writer.append(make_records(1))
    path = writer.flush()
    assert path is not None
    (tmp_path / f".{path.name}.x1y2.tmp").write_bytes(b"half a parquet file")
    (tmp_path / "notes.txt").write_text("not a batch")
    (tmp_path / "batch-subdir.parquet").mkdir()
    assert list_batches(tmp_path) == [path.stem]
    assert list_batches(tmp_path / "missing") == []


def test_concurrent_appends_keep_every_record(tmp_path: Path) -> None:
    writer = TrafficWriter(tmp_path, max_rows=97, max_age_seconds=0.01)
    threads, per_thread = 8, 300
    ids: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(per_thread // 3):
            records = make_records(3)
            with lock:
                ids.extend(r.id for r in records)
            writer.append(records)
            writer.flush_if_due()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    writer.close()
    frame = read_batches(tmp_path, list_batches(tmp_path))
    assert len(frame) == threads * per_thread
    assert frame["id"].is_unique and set(frame["id"]) == set(ids)
    assert frame.groupby("batch_id").size().max() <= 97


def test_read_batches_of_nothing_is_an_empty_frame(tmp_path: Path) -> None:
    frame = read_batches(tmp_path, [])
    assert frame.empty and list(frame.columns) == [*TRAFFIC_SCHEMA.names, "batch_id"]


def test_unreadable_batch_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "batch-20240101T000000000000-deadbeef.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(TrafficBatchError, match=bad.name):
        read_batches(tmp_path, list_batches(tmp_path))
    with pytest.raises(TrafficBatchError, match="batch-missing"):
        read_batches(tmp_path, ["batch-missing"])
    with pytest.raises(TrafficBatchError, match="Invalid traffic batch id"):
        read_batches(tmp_path, ["../elsewhere"])


def test_wrong_schema_batch_names_the_file_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "batch-20240101T000000000000-0badc0de.parquet"
    pq.write_table(pa.table({"id": ["a"], "text": ["hello"], "confidence": ["high"]}), bad)
    with pytest.raises(TrafficBatchError, match=bad.name) as info:
        read_batches(tmp_path, list_batches(tmp_path))
    assert "missing column 'predicted_label'" in str(info.value)
    assert "column 'confidence' is string" in str(info.value)


def test_batches_captured_before_abstention_existed_read_as_answered(tmp_path: Path) -> None:
    writer = TrafficWriter(tmp_path)
    writer.append(make_records(2) + [dataclasses.replace(make_records(1)[0], abstained=True)])
    path = writer.flush()
    assert read_batches(tmp_path, [path.stem])["abstained"].tolist() == [False, False, True]
    old = pq.read_table(path).drop_columns(["abstained"])  # a batch from an earlier release of the server
    pq.write_table(old, path)
    frame = read_batches(tmp_path, [path.stem])
    assert frame["abstained"].tolist() == [False, False, False]
    assert list(frame.columns) == [*TRAFFIC_SCHEMA.names, "batch_id"]


def test_batches_captured_before_response_lengths_existed_read_without_them(tmp_path: Path) -> None:
    writer = TrafficWriter(tmp_path)
    writer.append(make_records(2))
    written = writer.flush()
    pq.write_table(pq.read_table(written).drop_columns(["response_tokens"]), written)
    frame = read_batches(tmp_path, [written.stem])
    assert frame["response_tokens"].isna().all() and list(frame.columns) == [*TRAFFIC_SCHEMA.names, "batch_id"]


def test_a_response_is_traffic_with_its_length_and_one_without_a_length_is_quarantined(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    records = [GenerationRecord(f"r{i}", now, "Extract: parcel late", '{"intent": "shipping"}', "extractor", "2",
                                40.0, 9, tokens, -0.2, True, [0.5] * 8) for i, tokens in enumerate([12, None, 14])]
    writer = TrafficWriter(tmp_path, schema=GENERATION_SCHEMA)
    writer.append(records)
    batch = writer.flush().stem
    checked = validate_batch(tmp_path, batch, generation=GenerationPolicy(output="json", decision_field="intent"))
    assert checked.valid["response_tokens"].tolist() == [12, 14]
    assert checked.valid["predicted_label"].tolist() == ["shipping", "shipping"]
    assert checked.rejected["reason"].tolist() == ["invalid_response_tokens"]
