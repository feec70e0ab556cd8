"""Bad input everywhere: raw data, captured traffic batches and feedback files.

Every bad row or file is quarantined with a reason and nothing is lost: valid + quarantined == received, where
received counts the rows of every readable file plus one per unusable file. The drift sensor skips bad batches
with a visible reason, moves its cursor past them and keeps ticking.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelops.core.data.feedback import labelled_feedback, read_feedback
from modelops.core.data.schema import list_example_files, read_examples
from modelops.core.monitoring.traffic import list_batches, quarantine_batch, validate_batches
from modelops.core.monitoring.traffic_writer import TRAFFIC_SCHEMA, TrafficRecord, TrafficWriter, records_to_table

TEN_MB = 10 * 1024 * 1024
GARBAGE = bytes(range(256)) * 64  # binary garbage, line breaks included


def _parquet_with_invalid_utf8(path: Path, columns: dict[str, list[bytes]]) -> None:
    """A Parquet file whose string columns hold bytes that are not UTF-8 (what a foreign writer can produce)."""
    pq.write_table(pa.table({k: pa.array(v, pa.binary()).view(pa.string()) for k, v in columns.items()}), path)


def _truncated_parquet(path: Path) -> None:
    pq.write_table(pa.table({"text": ["a ticket"] * 50, "label": ["billing"] * 50}), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _assert_adds_up(valid: int, quarantined: int, received: int) -> None:
    assert valid + quarantined == received, f"{valid} valid + {quarantined} quarantined != {received} received"


# ---------------------------------------------------------------------------------------------- raw data

# file name -> (received, valid, reasons of the quarantined rows)
RAW_EXPECTED: dict[str, tuple[int, int, set[str]]] = {
    "good.csv": (3, 3, set()),
    "huge_text.csv": (2, 1, {"text_too_long"}),
    "latin1.csv": (3, 1, {"undecodable_bytes"}),
    "long_label.jsonl": (2, 1, {"label_too_long"}),
    "empty.csv": (1, 0, {"unreadable_file"}),
    "header_only.csv": (1, 0, {"empty_file"}),
    "garbage.csv": (1, 0, {"unreadable_file"}),
    "garbage.parquet": (1, 0, {"unreadable_file"}),
    "truncated.parquet": (1, 0, {"unreadable_file"}),
    "int_text.parquet": (2, 0, {"non_string_text"}),
    "no_label.parquet": (2, 0, {"missing_label"}),
    "invalid_utf8.parquet": (2, 1, {"undecodable_bytes"}),
    "lines.jsonl": (4, 1, {"invalid_json", "undecodable_bytes"}),
    "wrong_columns.csv": (2, 0, {"missing_column"}),
    "linked_outside.csv": (1, 0, {"outside_folder"}),
}


def _write_raw_inputs(raw: Path, outside: Path) -> None:
    raw.mkdir(parents=True)
    pd.DataFrame({"text": ["refund my order", "where is my parcel", "card charged twice"],
                  "label": ["refund", "shipping", "billing"]}).to_csv(raw / "good.csv", index=False)
    pd.DataFrame({"text": ["x" * TEN_MB, "normal ticket"], "label": ["billing", "billing"]}).to_csv(
        raw / "huge_text.csv", index=False)
    latin1 = "text,label\ncaf\xe9 au lait,billing\nfine,caf\xe9\nplain,refund\n"
    (raw / "latin1.csv").write_bytes(latin1.encode("latin-1"))
    (raw / "long_label.jsonl").write_text(json.dumps({"text": "a", "label": "y" * 1000}) + "\n"
                                          + json.dumps({"text": "b", "label": "billing"}) + "\n")
    (raw / "empty.csv").write_bytes(b"")
    (raw / "header_only.csv").write_text("text,label\n")
    (raw / "garbage.csv").write_bytes(GARBAGE)
    (raw / "garbage.parquet").write_bytes(GARBAGE)
    _truncated_parquet(raw / "truncated.parquet")
    pq.write_table(pa.table({"text": [1, 2], "label": ["billing", "refund"]}), raw / "int_text.parquet")
    pq.write_table(pa.table({"text": ["no label", "none here"]}), raw / "no_label.parquet")
    _parquet_with_invalid_utf8(raw / "invalid_utf8.parquet", {"text": [b"ok text", b"\xff\xfe broken"],
                                                             "label": [b"billing", b"billing"]})
    (raw / "lines.jsonl").write_bytes(b'{"text": "fine", "label": "billing"}\n{"text": "cut\n[1, 2]\n'
                                      b'{"text": "\xff\xfe", "label": "x"}\n')
    (raw / "wrong_columns.csv").write_text("body,label\nhello,billing\nhi,refund\n")
    outside.write_text("text,label\nsecret row,billing\n")
    (raw / "linked_outside.csv").symlink_to(outside)


def test_raw_files_bad_rows_and_files_are_quarantined_and_counts_add_up(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_raw_inputs(raw, tmp_path / "outside.csv")
    files = list_example_files(raw)
    assert sorted(f.name for f in files) == sorted(RAW_EXPECTED)
    for path in files:
        result = read_examples(path)
        received, valid, reasons = RAW_EXPECTED[path.name]
        assert (result.received, len(result.valid), set(result.rejected["reason"])) == (received, valid, reasons), \
            path.name
        _assert_adds_up(len(result.valid), len(result.rejected), received)
        assert all(json.loads(raw_record) is not None for raw_record in result.rejected["raw"])  # original kept
    assert "secret row" not in read_examples(raw / "linked_outside.csv").rejected["raw"].iloc[0]  # never read


def test_raw_examples_asset_quarantines_every_bad_input_and_keeps_the_files(tmp_path: Path, resources, instance,
                                                                            settings, customisation) -> None:
    _write_raw_inputs(settings.raw_dir, tmp_path / "outside.csv")
    before = {p.name: p.stat().st_size for p in settings.raw_dir.iterdir()}
    result = dg.materialize([customisation.raw_examples], resources=resources, instance=instance,
                            run_config=customisation.keys.run_config(raw_examples={"source": "files"}))
    node = f"{customisation.keys.name}__raw_examples"
    metadata = {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}
    received = sum(r for r, _, _ in RAW_EXPECTED.values())
    valid = sum(v for _, v, _ in RAW_EXPECTED.values())
    assert (metadata["received_rows"], metadata["valid_rows"], metadata["quarantined_rows"]) == (
        received, valid, received - valid)
    quarantined = pd.read_parquet(metadata["quarantine_path"])
    assert len(quarantined) == received - valid
    assert set(quarantined["reason"]) == set().union(*(r for _, _, r in RAW_EXPECTED.values()))
    assert {p.name: p.stat().st_size for p in settings.raw_dir.iterdir()} == before  # the inputs stay as they were


# ---------------------------------------------------------------------------------------------- traffic batches


def _record(text: str = "where is my parcel", **changes: object) -> TrafficRecord:
    record = TrafficRecord(uuid.uuid4().hex, datetime.now(UTC), text, "shipping", 0.8, "support-router", "1", 3.0,
                           [0.1] * 32)
    return replace(record, **changes)


def _write(folder: Path, records: list[TrafficRecord]) -> str:
    writer = TrafficWriter(folder, max_rows=len(records) + 1)
    writer.append(records)
    path = writer.flush()
    assert path is not None
    return path.stem


def _batch_with_bad_rows(folder: Path, good: int = 3) -> tuple[str, int, dict[str, int]]:
    """A batch as the writer stores it, holding `good` valid rows and one of each bad row; (id, rows, reasons)."""
    records = [_record(f"ticket number {i}") for i in range(good)]
    bad = {
        "duplicate_id": _record(id=records[0].id),
        "missing_id": _record(id="  "),
        "invalid_id": _record(id="id with spaces"),
        "empty_text": _record(text="   "),
        "text_too_long": _record(text="x" * TEN_MB),
        "missing_label": _record(predicted_label=""),
        "nan_confidence": _record(confidence=float("nan")),
        "confidence_above_one": _record(confidence=1.5),
        "empty_embedding": _record(embedding=[]),
        "short_embedding": _record(embedding=[0.1] * 31),
        "infinite_embedding": _record(embedding=[float("inf")] * 32),
    }
    reasons = {"duplicate_id": 1, "missing_id": 1, "invalid_id": 1, "empty_text": 1, "text_too_long": 1,
               "missing_label": 1, "invalid_confidence": 2, "invalid_embedding": 3}
    return _write(folder, records + list(bad.values())), good + len(bad), reasons


def _invalid_utf8_batch(folder: Path) -> str:
    """Two rows, the second with bytes in `text` that are not UTF-8."""
    table = records_to_table([_record("fine text"), _record("will be broken")])
    texts = pa.array([b"fine text", b"\xff\xfe broken"], pa.binary()).view(pa.string())
    name = "batch-20000101T000000000001-0000abcd"
    pq.write_table(table.set_column(table.schema.get_field_index("text"), "text", texts), folder / f"{name}.parquet")
    return name


def _unusable_batches(folder: Path) -> dict[str, str]:
    """Batch files that cannot be used at all: id -> expected reason."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batch-20000101T000000000002-00000000.parquet").write_bytes(b"")
    (folder / "batch-20000101T000000000003-00000000.parquet").write_bytes(GARBAGE)
    pq.write_table(pa.table({"id": ["a"], "text": ["hello"], "confidence": ["high"]}),
                   folder / "batch-20000101T000000000004-00000000.parquet")
    _truncated_parquet(folder / "batch-20000101T000000000005-00000000.parquet")
    (folder / "batch-bad name!.parquet").write_bytes(b"not even looked at")
    return {"batch-20000101T000000000002-00000000": "unreadable_file",
            "batch-20000101T000000000003-00000000": "unreadable_file",
            "batch-20000101T000000000004-00000000": "schema_mismatch",
            "batch-20000101T000000000005-00000000": "unreadable_file",
            "batch-bad name!": "invalid_name"}


def test_traffic_batches_bad_rows_and_files_are_quarantined_and_counts_add_up(tmp_path: Path) -> None:
    production, quarantine = tmp_path / "production", tmp_path / "quarantine" / "traffic"
    unusable = _unusable_batches(production)
    mixed, mixed_rows, mixed_reasons = _batch_with_bad_rows(production)
    utf8 = _invalid_utf8_batch(production)
    window = validate_batches(production, list_batches(production), max_text_chars=2000, embedding_dim=32)

    received = mixed_rows + 2 + len(unusable)
    _assert_adds_up(len(window.valid), window.quarantined, window.received)
    assert (window.received, len(window.valid)) == (received, 3 + 1)
    by_id = {b.batch_id: b for b in window.batches}
    assert by_id[mixed].rejected["reason"].value_counts().to_dict() == mixed_reasons
    assert by_id[utf8].rejected["reason"].tolist() == ["undecodable_bytes"]
    assert {b.batch_id: b.rejected["reason"].iloc[0] for b in window.unusable} == unusable
    assert all(b.error and len(b.rejected) == 1 and b.rejected["row"].iloc[0] == -1 for b in window.unusable)
    assert window.usable_ids == sorted([mixed, utf8])
    assert window.valid["id"].is_unique and window.valid["text"].str.len().max() < 2000

    paths = [quarantine_batch(production, batch, quarantine) for batch in window.batches]
    assert all(p is not None for p in paths)
    stored = pd.concat(pd.read_parquet(p) for p in paths)
    assert len(stored) == window.quarantined  # every rejection is on disk with its reason and original record
    assert {json.loads(r)["id"] for r in stored[stored["row"] >= 0]["raw"]} | set(window.valid["id"]) == (
        set(pq.read_table(production / f"{mixed}.parquet").column("id").to_pylist())
        | set(pq.read_table(production / f"{utf8}.parquet").column("id").to_pylist()))
    # Unusable files were moved (not deleted) to quarantine; usable ones stay whole where they were.
    assert list_batches(production) == sorted([mixed, utf8])
    moved = sorted(p.stem for p in quarantine.glob("batch-*.parquet") if not p.name.endswith(".rejected.parquet"))
    assert moved == sorted(unusable)
    assert pq.read_table(production / f"{mixed}.parquet").num_rows == mixed_rows


# ---------------------------------------------------------------------------------------------- the drift sensor


@pytest.fixture()
def sensor_world(settings, fresh_mlflow_db, untrained_adapter_dir: Path):
    """A champion (v1) with a synthetic drift reference; the sensor reads only the alias and the reference."""
    import numpy as np

    from modelops.core.monitoring.reference import save_reference
    from modelops.core.registry.registry import ModelRegistry

    fresh_mlflow_db(settings.home / "mlflow.db")
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name, settings.mlflow_artifact_root)
    with registry.run("train", {}) as run_id:
        version = registry.register_adapter(run_id, untrained_adapter_dir, {})
    registry.promote(version, "test champion")
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"text": [f"reference ticket {i}" for i in range(300)], "predicted_label": "billing",
                              "confidence": rng.uniform(0.5, 1.0, 300),
                              "embedding": list(rng.standard_normal((300, 32)).astype("float32"))})
    save_reference(settings.state / "reference", version, reference, frozenset({"reference", "ticket"}))
    with dg.instance_for_test() as instance:
        yield instance


def _tick(settings, instance, resources, cursor: str | None = None):
    from modelops.defs.customisation import customisation_defs

    sensor = customisation_defs(settings.customisation).drift_sensor
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))


def test_drift_sensor_skips_bad_batches_with_a_reason_and_keeps_ticking(sensor_world, settings, resources,
                                                                        monkeypatch) -> None:
    from modelops.core.monitoring import traffic

    instance, quarantine = sensor_world, settings.quarantine_dir / "traffic"
    production = settings.production_dir
    unusable = _unusable_batches(production)

    # Tick 1: only unusable batches, and moving them fails (read-only quarantine): no crash, the cursor moves on.
    def refuse_move(source: object, target: object) -> None:
        raise PermissionError(f"read-only file system: {target}")

    monkeypatch.setattr(traffic.shutil, "move", refuse_move)
    first = _tick(settings, instance, resources)
    message = first.skip_reason.skip_message
    assert message.startswith("no usable new traffic; skipped 5 unusable batch(es)")
    assert all(f"{batch_id} ({reason}; could not be moved" in message for batch_id, reason in unusable.items())
    well_formed = sorted(b for b in unusable if b != "batch-bad name!")
    assert json.loads(first.cursor)["last_batch"] == well_formed[-1]  # a stray name never becomes the cursor
    assert not first.dynamic_partitions_requests
    monkeypatch.undo()
    # The well-formed ones are behind the cursor now (left in place, not re-read); the stray name is screened again
    # and moved this time.
    again = _tick(settings, instance, resources, first.cursor)
    assert again.skip_reason.skip_message == (f"no usable new traffic; skipped 1 unusable batch(es), quarantine in "
                                              f"{quarantine}: batch-bad name! (invalid_name)")
    assert (quarantine / "batch-bad name!.parquet").is_file()
    assert "no new traffic batches" in _tick(settings, instance, resources, again.cursor).skip_message

    # Tick 2: a usable batch with bad rows, then another corrupt batch: rows and file quarantined, the rest waits.
    mixed, rows, reasons = _batch_with_bad_rows(production, good=12)
    corrupt = "batch-99990101T000000000000-00000000"
    (production / f"{corrupt}.parquet").write_bytes(GARBAGE)
    second = _tick(settings, instance, resources, again.cursor)
    message = second.skip_reason.skip_message
    assert "waiting for traffic: 12/200 rows in 1 new batch(es)" in message
    assert f"skipped 1 unusable batch(es), quarantine in {quarantine}: {corrupt} (unreadable_file)" in message
    assert second.dynamic_partitions_requests[0].partition_keys == [mixed]  # no partition for the corrupt file
    assert json.loads(second.cursor)["last_batch"] == well_formed[-1]  # mixed still waits for more traffic
    assert (quarantine / f"{corrupt}.parquet").is_file() and corrupt not in list_batches(production)
    rejected = pd.read_parquet(quarantine / f"{mixed}.rejected.parquet")
    _assert_adds_up(12, len(rejected), rows)
    assert rejected["reason"].value_counts().to_dict() == reasons
    third = _tick(settings, instance, resources, second.cursor)  # the next tick sees the same state, nothing new
    assert third.skip_reason.skip_message == "waiting for traffic: 12/200 rows in 1 new batch(es)"


# ---------------------------------------------------------------------------------------------- feedback files

# file name -> (received, valid after the latest label wins, reasons of the quarantined rows)
FEEDBACK_EXPECTED: dict[str, tuple[int, int, set[str]]] = {
    "a.csv": (8, 2, {"duplicate_id", "missing_id", "missing_label", "invalid_id", "label_too_long"}),
    "b.csv": (2, 1, {"undecodable_bytes"}),
    "c.parquet": (1, 0, {"unreadable_file"}),
    "d.csv": (1, 0, {"unreadable_file"}),
    "e.csv": (2, 0, {"missing_column"}),
    "f.jsonl": (3, 1, {"invalid_json", "invalid_id"}),
    "g.csv": (1, 0, {"outside_folder"}),
    "h.parquet": (2, 1, {"undecodable_bytes"}),
}


def _write_feedback(folder: Path, outside: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("id,label\nid1,billing\nid2,refund\nid3,shipping\nid1,refund\n,billing\nid4,\n"
                                  f"id 5,billing\nid6,{'y' * TEN_MB}\n")
    (folder / "b.csv").write_bytes("id,label\nid2,shipping\nid8,caf\xe9\n".encode("latin-1"))
    (folder / "c.parquet").write_bytes(GARBAGE)
    (folder / "d.csv").write_bytes(b"")
    (folder / "e.csv").write_text("prediction_id,label\nid9,billing\nid10,refund\n")
    (folder / "f.jsonl").write_text('{"id": "id7", "label": "billing"}\n{"id": \n{"id": 7, "label": "refund"}\n')
    outside.write_text("id,label\nsecret,billing\n")
    (folder / "g.csv").symlink_to(outside)
    _parquet_with_invalid_utf8(folder / "h.parquet", {"id": [b"id11", b"\xffid12"], "label": [b"refund", b"refund"]})


def test_feedback_bad_rows_and_files_are_quarantined_latest_label_wins_and_counts_add_up(tmp_path: Path) -> None:
    folder = tmp_path / "feedback"
    _write_feedback(folder, tmp_path / "outside.csv")
    result = read_feedback(folder)
    received = sum(r for r, _, _ in FEEDBACK_EXPECTED.values())
    _assert_adds_up(len(result.valid), len(result.rejected), result.received)
    assert (result.received, len(result.valid)) == (received, sum(v for _, v, _ in FEEDBACK_EXPECTED.values()))
    for source, (count, valid, reasons) in FEEDBACK_EXPECTED.items():
        rejected = result.rejected[result.rejected["source"] == source]
        assert (len(rejected), set(rejected["reason"])) == (count - valid, reasons), source
    assert dict(zip(result.valid["id"], result.valid["label"], strict=True)) == {
        "id1": "refund", "id2": "shipping", "id3": "shipping", "id7": "billing", "id11": "refund"}
    superseded = result.rejected[result.rejected["reason"] == "duplicate_id"]["raw"].map(json.loads).tolist()
    assert sorted((r["id"], r["superseded_by"]) for r in superseded) == [("id1", "a.csv row 3"),
                                                                         ("id2", "b.csv row 0")]
    assert "secret" not in result.rejected["raw"].str.cat()


def test_feedback_join_leaves_out_bad_traffic_and_never_crashes(tmp_path: Path) -> None:
    production = tmp_path / "production"
    records = [_record(f"ticket {i}", id=f"id{i}") for i in (1, 2, 3)] + [_record("", id="id7")]
    batch_id = _write(production, records)
    _unusable_batches(production)
    feedback = pd.DataFrame({"id": ["id1", "id2", "id7", "unknown"], "label": ["refund", "shipping", "x", "y"]})
    joined = labelled_feedback(production, feedback)
    assert sorted(zip(joined["text"], joined["label"], strict=True)) == [("ticket 1", "refund"),
                                                                         ("ticket 2", "shipping")]
    assert set(joined["source"]) == {f"feedback:{batch_id}"}


def test_curated_training_set_quarantines_feedback_and_reports_counts(tmp_path: Path, resources, instance,
                                                                      settings, customisation) -> None:
    _write_feedback(settings.feedback_dir, tmp_path / "outside.csv")
    config = customisation.keys.run_config(raw_examples={"generator_rows": 300})
    result = dg.materialize([customisation.raw_examples, customisation.curated_training_set], resources=resources,
                            instance=instance, run_config=config)
    node = f"{customisation.keys.name}__curated_training_set"
    metadata = {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}
    received = sum(r for r, _, _ in FEEDBACK_EXPECTED.values())
    assert metadata["feedback_received_rows"] == received
    _assert_adds_up(metadata["feedback_valid_rows"], metadata["feedback_quarantined_rows"], received)
    quarantined = pd.read_parquet(metadata["feedback_quarantine_path"])
    assert len(quarantined) == metadata["feedback_quarantined_rows"]
    assert Path(metadata["feedback_quarantine_path"]).parent == settings.quarantine_dir / "feedback"
    assert sorted(p.name for p in settings.feedback_dir.iterdir()) == sorted(FEEDBACK_EXPECTED)  # files kept


def test_empty_valid_parquet_batch_counts_zero_and_is_usable(tmp_path: Path) -> None:
    (tmp_path / "batch-20000101T000000000000-00000000.parquet").write_bytes(b"")
    pq.write_table(TRAFFIC_SCHEMA.empty_table(), tmp_path / "batch-20000101T000000000001-00000000.parquet")
    window = validate_batches(tmp_path, list_batches(tmp_path))
    assert [(b.usable, b.received) for b in window.batches] == [(False, 1), (True, 0)]
