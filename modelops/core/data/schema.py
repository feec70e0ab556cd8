"""The labelled-example contract and its validation: every input row ends up valid or quarantined with a reason."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pandas as pd
import pyarrow as pa

from modelops.core.defaults import MAX_TEXT_CHARS

log = logging.getLogger(__name__)

EXAMPLE_SCHEMA = pa.schema([("text", pa.string()), ("label", pa.string()), ("source", pa.string())])
QUARANTINE_COLUMNS = ["source", "row", "reason", "raw"]
SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl")
MAX_LABEL_CHARS = 100
MAX_ID_CHARS = 128

# Keys _read_records puts in place of a JSON line it could not turn into a record, and the reason each one means.
_UNDECODABLE_LINE = "__undecodable_line__"
_INVALID_JSON_LINE = "__invalid_json_line__"
_NOT_AN_OBJECT = "__not_an_object__"
# What undecodable input bytes turn into: lone surrogates (surrogateescape) or U+FFFD (errors="replace").
_UNDECODABLE = re.compile("[\udc80-\udcff\ufffd]")


class Reason(StrEnum):
    """Why a row (or, with row -1, a whole file) was quarantined."""

    MISSING_TEXT = "missing_text"
    EMPTY_TEXT = "empty_text"
    NON_STRING_TEXT = "non_string_text"
    MISSING_LABEL = "missing_label"
    LABEL_TOO_LONG = "label_too_long"
    TEXT_TOO_LONG = "text_too_long"
    MISSING_RESPONSE = "missing_response"
    RESPONSE_TOO_LONG = "response_too_long"
    UNDECODABLE_BYTES = "undecodable_bytes"
    INVALID_JSON = "invalid_json"
    MISSING_ID = "missing_id"
    INVALID_ID = "invalid_id"
    DUPLICATE_ID = "duplicate_id"
    INVALID_CONFIDENCE = "invalid_confidence"
    INVALID_EMBEDDING = "invalid_embedding"
    INVALID_RESPONSE_TOKENS = "invalid_response_tokens"
    UNREADABLE_FILE = "unreadable_file"
    EMPTY_FILE = "empty_file"
    MISSING_COLUMN = "missing_column"
    SCHEMA_MISMATCH = "schema_mismatch"
    INVALID_NAME = "invalid_name"
    OUTSIDE_FOLDER = "outside_folder"


class NoValidExamplesError(ValueError):
    """Ingestion found no usable example at all."""


class UnsafePathError(ValueError):
    """A file name that would reach outside its folder (a path, '..', or a link pointing elsewhere)."""


class InputFileError(ValueError):
    """A whole input file cannot be used; `reason` says why (quarantined as one row with row -1)."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ValidationResult:
    """Valid rows (examples: text, label, source; feedback: id, label, source) and rejected rows (source, row,
    reason, raw JSON of the input)."""

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
            pd.concat(rejected, ignore_index=True) if rejected else empty_rejected(),
        )


def empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    """A frame with no rows and `columns`, each of strings: what a reader returns when nothing was valid."""
    return pd.DataFrame({c: pd.Series(dtype=str) for c in columns})


def _empty_valid() -> pd.DataFrame:
    return empty_frame(EXAMPLE_SCHEMA.names)


def empty_rejected() -> pd.DataFrame:
    """A quarantine frame with no rows (QUARANTINE_COLUMNS)."""
    return pd.DataFrame({c: pd.Series(dtype=int if c == "row" else str) for c in QUARANTINE_COLUMNS})


def raw_json(value: object) -> str:
    """The original input as ASCII JSON (bytes and other non-JSON values as their repr): storable, nothing lost."""
    return json.dumps(value, default=repr, ensure_ascii=True)


def rejected_row(source: str, row: int, reason: Reason, raw: object) -> dict[str, object]:
    """One quarantine row; row -1 stands for the whole file."""
    return {"source": source, "row": row, "reason": str(reason), "raw": raw_json(raw)}


def rejected_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=QUARANTINE_COLUMNS) if rows else empty_rejected()


def printable_name(name: str) -> str:
    """A file name that is always valid UTF-8 (undecodable bytes in a name become U+FFFD), for `source` columns."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def display_name(path: Path) -> str:
    return printable_name(path.name)


def path_inside(directory: Path, name: str, what: str) -> Path:
    """`directory/name` when `name` is one plain file name whose target (links followed) stays inside `directory`.

    Raises UnsafePathError for '', '.', '..', path separators, NUL, or a link that points outside the folder.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or any(ch in name for ch in "/\\\x00"):
        raise UnsafePathError(f"Invalid {what} name {name!r}: expected a plain file name inside {directory} "
                              "(no '/', '\\', '..' or NUL).")
    path = Path(directory) / name
    target, folder = path.resolve(), Path(directory).resolve()
    if not target.is_relative_to(folder):
        raise UnsafePathError(f"{what} {path} points to {target}, outside {folder}; copy the file into the folder "
                              "instead of linking to it.")
    return path


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _has_undecodable(value: str) -> bool:
    return _UNDECODABLE.search(value) is not None


def utf8_or_bytes(value: object) -> object:
    """bytes -> str when valid UTF-8; other values unchanged (undecodable bytes stay bytes, to be rejected)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def text_reason(value: object, max_chars: int) -> Reason | None:
    """Why `value` is not a usable text (None when it is): missing, not a string, undecodable, empty, too long."""
    if _is_missing(value):
        return Reason.MISSING_TEXT
    value = utf8_or_bytes(value)
    if isinstance(value, bytes):
        return Reason.UNDECODABLE_BYTES
    if not isinstance(value, str):
        return Reason.NON_STRING_TEXT
    if _has_undecodable(value):
        return Reason.UNDECODABLE_BYTES
    if not value.strip():
        return Reason.EMPTY_TEXT
    if len(value) > max_chars:
        return Reason.TEXT_TOO_LONG
    return None


def label_value(value: object) -> tuple[str | None, Reason | None]:
    """A label as a stripped string, or the reason it cannot be one (missing, undecodable, over MAX_LABEL_CHARS)."""
    if _is_missing(value):
        return None, Reason.MISSING_LABEL
    value = utf8_or_bytes(value)
    if isinstance(value, bytes):
        return None, Reason.UNDECODABLE_BYTES
    label = str(value).strip()
    if not label:
        return None, Reason.MISSING_LABEL
    if _has_undecodable(label):
        return None, Reason.UNDECODABLE_BYTES
    if len(label) > MAX_LABEL_CHARS:
        return None, Reason.LABEL_TOO_LONG
    return label, None


def id_value(value: object) -> tuple[str | None, Reason | None]:
    """A prediction id as a stripped string, or the reason it cannot be one (missing, undecodable, malformed)."""
    if _is_missing(value):
        return None, Reason.MISSING_ID
    value = utf8_or_bytes(value)
    if isinstance(value, bytes):
        return None, Reason.UNDECODABLE_BYTES
    if not isinstance(value, str):
        return None, Reason.INVALID_ID
    identifier = value.strip()
    if not identifier:
        return None, Reason.MISSING_ID
    if _has_undecodable(identifier):
        return None, Reason.UNDECODABLE_BYTES
    if len(identifier) > MAX_ID_CHARS or not identifier.isprintable() or any(ch.isspace() for ch in identifier):
        return None, Reason.INVALID_ID
    return identifier, None


def line_reason(record: dict[str, object]) -> Reason | None:
    """The reason for a placeholder record that stands for a JSON line that could not be parsed into an object."""
    if _UNDECODABLE_LINE in record:
        return Reason.UNDECODABLE_BYTES
    if _INVALID_JSON_LINE in record or _NOT_AN_OBJECT in record:
        return Reason.INVALID_JSON
    return None


def validate_records(
    records: list[dict[str, object]], source: str, text_column: str = "text", label_column: str = "label",
    max_chars: int = MAX_TEXT_CHARS,
) -> ValidationResult:
    """Split raw records into valid examples and quarantined rows with a reason; nothing is dropped."""
    valid_rows: list[dict[str, str]] = []
    rejected_rows: list[dict[str, object]] = []
    for row, record in enumerate(records):
        text = record.get(text_column)
        reason = line_reason(record) or text_reason(text, max_chars)
        label, label_reason = label_value(record.get(label_column))
        reason = reason or label_reason
        if reason is None:
            text_str = utf8_or_bytes(text)
            valid_rows.append({"text": str(text_str), "label": str(label), "source": source})
        else:
            rejected_rows.append(rejected_row(source, row, reason, record))
    valid = pd.DataFrame(valid_rows, columns=["text", "label", "source"]) if valid_rows else _empty_valid()
    return ValidationResult(valid, rejected_frame(rejected_rows))


def table_records(table: pa.Table) -> list[dict[str, object]]:
    """Arrow rows as dicts; string cells are decoded one by one, so invalid UTF-8 stays in its row (as bytes)."""
    columns: dict[str, list[object]] = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            binary = pa.large_binary() if pa.types.is_large_string(field.type) else pa.binary()
            columns[field.name] = [utf8_or_bytes(v) for v in column.cast(binary).to_pylist()]
        else:
            columns[field.name] = column.to_pylist()
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _read_records(path: Path) -> list[dict[str, object]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, dtype=object, keep_default_na=False, na_values=[""],
                            encoding="utf-8", encoding_errors="surrogateescape")
        return frame.to_dict(orient="records")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return table_records(pq.read_table(path))
    if suffix == ".jsonl":
        records: list[dict[str, object]] = []
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                parsed = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                parsed = {_UNDECODABLE_LINE: line.decode("utf-8", "surrogateescape")}
            except json.JSONDecodeError as exc:
                parsed = {_INVALID_JSON_LINE: number, "__error__": str(exc), "__line__": line}
            records.append(parsed if isinstance(parsed, dict) else {_NOT_AN_OBJECT: parsed})
        return records
    raise ValueError(f"unsupported file type {suffix!r}; use one of {SUPPORTED_SUFFIXES}")


def read_records(path: Path) -> list[dict[str, object]]:
    """All records of a CSV/Parquet/JSONL file; InputFileError if it is unreadable, empty or links out of its folder."""
    path = Path(path)
    try:
        path_inside(path.parent, path.name, "input file")
    except UnsafePathError as exc:
        raise InputFileError(str(exc), Reason.OUTSIDE_FOLDER) from exc
    try:
        records = _read_records(path)
    except Exception as exc:  # any failure (parser, Arrow, OS, empty file) means the file is unreadable
        raise InputFileError(f"Cannot read {path}: {type(exc).__name__}: {exc}", Reason.UNREADABLE_FILE) from exc
    if not records:
        raise InputFileError(f"{path} holds no records (a header or blank lines only)", Reason.EMPTY_FILE)
    return records


def file_rejection(path: Path, error: InputFileError) -> pd.DataFrame:
    """The one quarantine row (row -1) that stands for a whole unusable file."""
    log.warning("%s quarantined (%s): %s", path, error.reason, error)
    return rejected_frame([rejected_row(display_name(path), -1, error.reason, {"error": str(error)})])


def missing_column_rejection(path: Path, records: list[dict[str, object]], columns: list[str]) -> pd.DataFrame | None:
    """Every record quarantined as MISSING_COLUMN when no record has one of `columns`; None when all are present."""
    parsed = [r for r in records if line_reason(r) is None]  # unparsable JSON lines keep their own reason
    missing = [c for c in columns if all(c not in r for r in parsed)]
    if not parsed or not missing:
        return None
    source = display_name(path)
    return rejected_frame([rejected_row(source, i, Reason.MISSING_COLUMN, {**r, "__expected_columns__": missing})
                           for i, r in enumerate(records)])


def read_file_records(path: Path, columns: list[str]) -> tuple[list[dict[str, object]], pd.DataFrame | None]:
    """The records of one CSV/Parquet/JSONL file; or none and the quarantine rows that stand for them when the file
    is unusable (one row) or no record has one of `columns` (every row)."""
    try:
        records = read_records(path)
    except InputFileError as exc:
        return [], file_rejection(path, exc)
    rejected = missing_column_rejection(path, records, columns)
    return ([], rejected) if rejected is not None else (records, None)


def read_examples(path: Path, text_column: str = "text", label_column: str = "label",
                  max_chars: int = MAX_TEXT_CHARS) -> ValidationResult:
    """Read one CSV/Parquet/JSONL file and validate it; an unusable file becomes one quarantined row."""
    path = Path(path)
    records, rejected = read_file_records(path, [text_column])
    if rejected is not None:
        return ValidationResult(_empty_valid(), rejected)
    return validate_records(records, display_name(path), text_column, label_column, max_chars)


def list_example_files(directory: Path) -> list[Path]:
    """Supported example files directly inside `directory`, sorted by name (hidden and temp files ignored)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith("."))
