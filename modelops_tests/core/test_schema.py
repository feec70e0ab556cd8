"""Every input row is either valid or quarantined with a reason; nothing is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from modelops.core.data.schema import Reason, list_example_files, read_examples, validate_records


def _reasons(result) -> list[str]:
    return result.rejected["reason"].tolist()


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"label": "billing"}, Reason.MISSING_TEXT),
        ({"text": None, "label": "billing"}, Reason.MISSING_TEXT),
        ({"text": "   ", "label": "billing"}, Reason.EMPTY_TEXT),
        ({"text": 42, "label": "billing"}, Reason.NON_STRING_TEXT),
        ({"text": "my invoice is wrong"}, Reason.MISSING_LABEL),
        ({"text": "my invoice is wrong", "label": "  "}, Reason.MISSING_LABEL),
        ({"text": "x" * 101, "label": "billing"}, Reason.TEXT_TOO_LONG),
        ({"text": b"\xff\xfe broken", "label": "billing"}, Reason.UNDECODABLE_BYTES),
        ({"text": "bad \udcff surrogate", "label": "billing"}, Reason.UNDECODABLE_BYTES),
    ],
)
def test_each_invalid_reason_is_quarantined(record, reason):
    result = validate_records([record, {"text": "where is my parcel", "label": "shipping"}], "t", max_chars=100)
    assert _reasons(result) == [str(reason)]
    assert result.valid["text"].tolist() == ["where is my parcel"]
    assert result.received == 2
    assert json.loads(result.rejected["raw"].iloc[0]) is not None  # the original record is kept


def test_custom_column_names():
    result = validate_records([{"body": "refund please", "intent": "refund"}], "t", "body", "intent")
    assert result.valid[["text", "label"]].values.tolist() == [["refund please", "refund"]]


def test_csv_parquet_jsonl_all_count_up(tmp_path: Path):
    frame = pd.DataFrame({"text": ["a ticket", "", "another"], "label": ["billing", "refund", None]})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "b.parquet", index=False)
    (tmp_path / "c.jsonl").write_bytes(
        b'{"text": "fine", "label": "billing"}\n{"text": "\xff\xfe", "label": "x"}\nnot json\n[1, 2]\n'
    )
    (tmp_path / ".hidden.csv").write_text("text,label\nx,y\n")
    files = list_example_files(tmp_path)
    assert [f.name for f in files] == ["a.csv", "b.parquet", "c.jsonl"]
    for path, expected_valid, expected_total in ((files[0], 1, 3), (files[1], 1, 3), (files[2], 1, 4)):
        result = read_examples(path)
        assert len(result.valid) == expected_valid
        assert result.received == expected_total


def test_csv_with_undecodable_bytes(tmp_path: Path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9 au lait,billing\nplain text,refund\n".encode("latin-1"))
    result = read_examples(path)
    assert _reasons(result) == [str(Reason.UNDECODABLE_BYTES)]
    assert result.received == 2


def test_unreadable_file_is_one_quarantined_row(tmp_path: Path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all")
    result = read_examples(path)
    assert result.valid.empty
    assert _reasons(result) == [str(Reason.UNREADABLE_FILE)]


def test_missing_text_column_quarantines_every_row(tmp_path: Path):
    path = tmp_path / "wrong.csv"
    path.write_text("body,label\nhello,billing\nhi,refund\n")
    result = read_examples(path)
    assert result.valid.empty
    assert _reasons(result) == [str(Reason.MISSING_COLUMN)] * 2
