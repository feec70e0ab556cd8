"""The labelled-example contract and its validation: every input row ends up valid or quarantined with a reason."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pandas as pd
import pyarrow as pa

log = logging.getLogger(__name__)

EXAMPLE_SCHEMA = pa.schema([("text", pa.string()), ("label", pa.string()), ("source", pa.string())])
QUARANTINE_COLUMNS = ["source", "row", "reason", "raw"]
SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl")


class Reason(StrEnum):
    """Why a row was quarantined."""

    MISSING_TEXT = "missing_text"
    EMPTY_TEXT = "empty_text"
    NON_STRING_TEXT = "non_string_text"
    MISSING_LABEL = "missing_label"
    TEXT_TOO_LONG = "text_too_long"
    UNDECODABLE_BYTES = "undecodable_bytes"
    UNREADABLE_FILE = "unreadable_file"
    MISSING_COLUMN = "missing_column"


class NoValidExamplesError(ValueError):
    """Ingestion found no usable example at all."""


@dataclass(frozen=True)
class ValidationResult:
    """Valid rows (text, label, source) and rejected rows (source, row, reason, raw JSON of the input)."""

    valid: pd.DataFrame
    rejected: pd.DataFrame

    @property
    def received(self) -> int:
        return len(self.valid) + len(self.rejected)

    @staticmethod
    def concat(results: list[ValidationResult]) -> ValidationResult:
        valid = [r.valid for r in results if not r.valid.empty]
        rejected = [r.rejected for r in results if not r.rejected.empty]
        return ValidationResult(
            pd.concat(valid, ignore_index=True) if valid else _empty_valid(),
            pd.concat(rejected, ignore_index=True) if rejected else _empty_rejected(),
        )


def _empty_valid() -> pd.DataFrame:
    return pd.DataFrame({"text": pd.Series(dtype=str), "label": pd.Series(dtype=str), "source": pd.Series(dtype=str)})


def _empty_rejected() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=int if c == "row" else str) for c in QUARANTINE_COLUMNS})


def _raw_json(value: object) -> str:
    return json.dumps(value, default=repr, ensure_ascii=True)


def _text_reason(value: object, max_chars: int) -> Reason | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return Reason.MISSING_TEXT
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return Reason.UNDECODABLE_BYTES
    if not isinstance(value, str):
        return Reason.NON_STRING_TEXT
    if any("\udc80" <= ch <= "\udcff" for ch in value) or "\ufffd" in value:
        return Reason.UNDECODABLE_BYTES
    if not value.strip():
        return Reason.EMPTY_TEXT
    if len(value) > max_chars:
        return Reason.TEXT_TOO_LONG
    return None


def _label_value(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    label = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return label.strip() or None


def validate_records(
    records: list[dict[str, object]], source: str, text_column: str = "text", label_column: str = "label",
    max_chars: int = 2000,
) -> ValidationResult:
    """Split raw records into valid examples and quarantined rows with a reason; nothing is dropped."""
    valid_rows: list[dict[str, str]] = []
    rejected_rows: list[dict[str, object]] = []
    for row, record in enumerate(records):
        text = record.get(text_column)
        reason = _text_reason(text, max_chars)
        label = _label_value(record.get(label_column))
        if reason is None and label is None:
            reason = Reason.MISSING_LABEL
        if reason is None:
            text_str = text.decode("utf-8") if isinstance(text, bytes) else str(text)
            valid_rows.append({"text": text_str, "label": str(label), "source": source})
        else:
            rejected_rows.append({"source": source, "row": row, "reason": str(reason), "raw": _raw_json(record)})
    valid = pd.DataFrame(valid_rows, columns=["text", "label", "source"]) if valid_rows else _empty_valid()
    rejected = pd.DataFrame(rejected_rows, columns=QUARANTINE_COLUMNS) if rejected_rows else _empty_rejected()
    return ValidationResult(valid, rejected)


def _read_records(path: Path) -> list[dict[str, object]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, dtype=object, keep_default_na=False, na_values=[""],
                            encoding="utf-8", encoding_errors="surrogateescape")
        return frame.to_dict(orient="records")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if suffix == ".jsonl":
        records: list[dict[str, object]] = []
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                parsed = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                parsed = {"__undecodable_line__": line.decode("utf-8", "surrogateescape")}
            except json.JSONDecodeError as exc:
                parsed = {"__invalid_json_line__": number, "__error__": str(exc)}
            records.append(parsed if isinstance(parsed, dict) else {"__not_an_object__": parsed})
        return records
    raise ValueError(f"unsupported file type {suffix!r}; use one of {SUPPORTED_SUFFIXES}")


def read_examples(path: Path, text_column: str = "text", label_column: str = "label", max_chars: int = 2000) -> ValidationResult:
    """Read one CSV/Parquet/JSONL file and validate it; an unreadable file becomes one quarantined row."""
    path = Path(path)
    try:
        records = _read_records(path)
    except Exception as exc:  # noqa: BLE001 - any read failure is reported as a quarantine reason, never raised
        log.warning("cannot read %s: %s", path, exc)
        rejected = pd.DataFrame([{"source": path.name, "row": -1, "reason": str(Reason.UNREADABLE_FILE),
                                  "raw": _raw_json({"error": f"{type(exc).__name__}: {exc}"})}])
        return ValidationResult(_empty_valid(), rejected)
    if records and text_column not in records[0] and all(text_column not in r for r in records):
        rejected = pd.DataFrame([{"source": path.name, "row": i, "reason": str(Reason.MISSING_COLUMN),
                                  "raw": _raw_json({**r, "__expected_column__": text_column})}
                                 for i, r in enumerate(records)])
        return ValidationResult(_empty_valid(), rejected)
    return validate_records(records, path.name, text_column, label_column, max_chars)


def list_example_files(directory: Path) -> list[Path]:
    """Supported example files directly inside `directory`, sorted by name (hidden and temp files ignored)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith("."))
