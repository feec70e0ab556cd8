"""Captured production traffic as monitoring reads it: batch listing, reading, validation into windows, and quarantine
(the batches come from traffic_writer.TrafficWriter)."""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelops.core.atomic import write_parquet_atomic
from modelops.core.data.schema import (
    Reason,
    UnsafePathError,
    id_value,
    label_value,
    path_inside,
    printable_name,
    rejected_frame,
    rejected_row,
    table_records,
    text_reason,
)
from modelops.core.defaults import MAX_TEXT_CHARS
from modelops.core.monitoring.traffic_writer import (
    BATCH_ID_PATTERN,
    BATCH_PREFIX,
    BATCH_SUFFIX,
    GENERATION_SCHEMA,
    OPTIONAL_COLUMNS,
    TRAFFIC_SCHEMA,
    schema_name,
)

if TYPE_CHECKING:
    from modelops.core.evaluation.evaluation_policy import GenerationPolicy

log = logging.getLogger(__name__)

class TrafficBatchError(ValueError):
    """A traffic batch file cannot be read or does not match TRAFFIC_SCHEMA; `reason` classifies the problem."""

    def __init__(self, message: str, reason: Reason = Reason.UNREADABLE_FILE) -> None:
        super().__init__(message)
        self.reason = reason


def _is_batch_file(path: Path) -> bool:
    name = path.name
    return name.startswith(BATCH_PREFIX) and name.endswith(BATCH_SUFFIX) and path.is_file()


def list_batches(directory: Path) -> list[str]:
    """Ids (file stems) of the complete batch files in `directory`, oldest first; [] when it does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.iterdir() if _is_batch_file(p))


def is_batch_id(batch_id: str) -> bool:
    """Whether `batch_id` is named as TrafficWriter names batches (such ids sort in time order)."""
    return isinstance(batch_id, str) and BATCH_ID_PATTERN.fullmatch(batch_id) is not None


def batch_path(directory: Path, batch_id: str) -> Path:
    """The file of a batch id; TrafficBatchError (reason invalid_name / outside_folder) for ids that are not batch
    names as TrafficWriter writes them, such as '../../etc/passwd'."""
    if not is_batch_id(batch_id):
        raise TrafficBatchError(
            f"Invalid traffic batch id {batch_id!r}: expected a batch file stem as TrafficWriter names them, "
            f"'{BATCH_PREFIX}<yyyymmddTHHMMSSffffff>-<8 hex digits>'. Rename or remove the file.",
            Reason.INVALID_NAME)
    try:
        return path_inside(Path(directory), f"{batch_id}{BATCH_SUFFIX}", "traffic batch")
    except UnsafePathError as exc:
        raise TrafficBatchError(str(exc), Reason.OUTSIDE_FOLDER) from exc


def _check_schema(schema: pa.Schema, path: Path, expected: pa.Schema = TRAFFIC_SCHEMA) -> None:
    problems = []
    for want in expected:
        index = schema.get_field_index(want.name)
        if index < 0 and want.name in OPTIONAL_COLUMNS:
            continue
        if index < 0:
            problems.append(f"missing column {want.name!r}")
        elif not schema.field(index).type.equals(want.type):
            problems.append(f"column {want.name!r} is {schema.field(index).type}, expected {want.type}")
    if problems:
        raise TrafficBatchError(f"Traffic batch {path} does not match {schema_name(expected)}: {'; '.join(problems)}. "
                                "Move it out of the traffic folder or rewrite it with TrafficWriter.",
                                Reason.SCHEMA_MISMATCH)


def _read_table(directory: Path, batch_id: str, generation: GenerationPolicy | None = None) -> pa.Table:
    """The batch's TRAFFIC_SCHEMA columns as stored (string cells not yet checked for valid UTF-8); with
    `generation`, a generative customisation's GENERATION_SCHEMA batch seen as traffic (generation_traffic.py)."""
    path = batch_path(directory, batch_id)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise TrafficBatchError(f"Cannot read traffic batch {path}: {exc}") from exc
    if generation is not None:
        from modelops.core.monitoring.generation_traffic import generation_table_as_traffic

        _check_schema(table.schema, path, GENERATION_SCHEMA)
        try:
            table = generation_table_as_traffic(table.select(GENERATION_SCHEMA.names), generation)
        except (pa.ArrowException, UnicodeDecodeError) as exc:
            raise TrafficBatchError(f"Traffic batch {path} holds invalid values ({exc})",
                                    Reason.UNDECODABLE_BYTES) from exc
    _check_schema(table.schema, path)
    for name, value in OPTIONAL_COLUMNS.items():
        if table.schema.get_field_index(name) < 0:
            table = table.append_column(TRAFFIC_SCHEMA.field(name), pa.array([value] * table.num_rows,
                                                                             TRAFFIC_SCHEMA.field(name).type))
    return table.select(TRAFFIC_SCHEMA.names)


def read_batch(directory: Path, batch_id: str) -> pa.Table:
    """One batch as a TRAFFIC_SCHEMA table; TrafficBatchError (naming the file) when unreadable or mismatched."""
    table = _read_table(directory, batch_id)
    try:
        table.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise TrafficBatchError(f"Traffic batch {batch_path(directory, batch_id)} holds invalid values ({exc}); "
                                "use validate_batch() to keep its valid rows.", Reason.UNDECODABLE_BYTES) from exc
    return table.cast(TRAFFIC_SCHEMA)


def _with_batch_id(table: pa.Table, batch_id: str) -> pa.Table:
    return table.append_column("batch_id", pa.array([batch_id] * table.num_rows, pa.string()))


def _empty_frame() -> pd.DataFrame:
    return _with_batch_id(TRAFFIC_SCHEMA.empty_table(), "").to_pandas()


def read_batches(directory: Path, batch_ids: Sequence[str]) -> pd.DataFrame:
    """The given batches concatenated in the given order, with a `batch_id` column."""
    tables = [_with_batch_id(read_batch(directory, batch_id), batch_id) for batch_id in batch_ids]
    return pa.concat_tables(tables).to_pandas() if tables else _empty_frame()


# ---------------------------------------------------------------- validation and quarantine of captured batches


@dataclass(frozen=True)
class BatchValidation:
    """One batch split into valid rows (TRAFFIC_SCHEMA + batch_id) and quarantined rows (QUARANTINE_COLUMNS).

    `error` is set when the whole file is unusable (unreadable, wrong schema, bad name): then `valid` is empty and
    `rejected` holds one row with row -1 and the reason. valid + rejected == received, always.
    """

    batch_id: str
    valid: pd.DataFrame
    rejected: pd.DataFrame
    error: str | None = None

    @property
    def received(self) -> int:
        return len(self.valid) + len(self.rejected)

    @property
    def usable(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class TrafficWindow:
    """Validated batches, in order: the valid rows of the usable ones form the window that is checked."""

    batches: list[BatchValidation]

    @property
    def valid(self) -> pd.DataFrame:
        frames = [b.valid for b in self.batches if not b.valid.empty]
        return pd.concat(frames, ignore_index=True) if frames else _empty_frame()

    @property
    def usable_ids(self) -> list[str]:
        return [b.batch_id for b in self.batches if b.usable]

    @property
    def unusable(self) -> list[BatchValidation]:
        return [b for b in self.batches if not b.usable]

    @property
    def received(self) -> int:
        return sum(b.received for b in self.batches)

    @property
    def quarantined(self) -> int:
        return sum(len(b.rejected) for b in self.batches)


def _embedding_reason(vector: list[float | None] | None, dim: int | None) -> Reason | None:
    if vector is None:
        return None  # a missing embedding is allowed: drift checks only the rows that have one
    if not vector or (dim is not None and len(vector) != dim) or not all(
            v is not None and math.isfinite(v) for v in vector):
        return Reason.INVALID_EMBEDDING
    return None


def _row_reason(record: dict[str, object], max_text_chars: int, embedding_dim: int | None,
                seen_ids: set[str], generated: bool = False) -> Reason | None:
    """Why a captured row cannot be used (None when it can); a usable row's id is added to `seen_ids`. A `generated`
    row (a generative model's response) also needs its length in tokens."""
    identifier, reason = id_value(record["id"])
    reason = reason or text_reason(record["text"], max_text_chars)
    reason = reason or label_value(record["predicted_label"])[1]
    confidence = record["confidence"]
    if reason is None and (confidence is None or not 0.0 <= confidence <= 1.0):  # NaN fails the comparison too
        reason = Reason.INVALID_CONFIDENCE
    if reason is None and any(isinstance(record[c], bytes) for c in ("model_name", "model_version")):
        reason = Reason.UNDECODABLE_BYTES
    reason = reason or _embedding_reason(record["embedding"], embedding_dim)  # type: ignore[arg-type]
    tokens = record["response_tokens"]
    if reason is None and generated and not (isinstance(tokens, int) and tokens >= 0):
        reason = Reason.INVALID_RESPONSE_TOKENS
    if reason is None and identifier in seen_ids:
        return Reason.DUPLICATE_ID  # the first row with this id is kept
    if reason is None and identifier is not None:
        seen_ids.add(identifier)
    return reason


def validate_batch(directory: Path, batch_id: str, max_text_chars: int = MAX_TEXT_CHARS,
                   embedding_dim: int | None = None, generation: GenerationPolicy | None = None) -> BatchValidation:
    """Split one batch into valid and quarantined rows (reasons as in schema.Reason); never raises for bad data.

    A row is rejected for a missing/invalid/duplicate id (the first occurrence is kept), a text that the serving
    limits would have refused, a missing predicted label, a confidence outside [0, 1], undecodable bytes, an
    embedding that is empty, non-finite or not `embedding_dim` long, or (a response) no valid length. The whole
    file is rejected when its name, bytes or schema are unusable. With `generation`, the batch holds a generative
    customisation's responses (GENERATION_SCHEMA), checked as traffic (generation_traffic.generation_table_as_traffic).
    """
    source = printable_name(f"{batch_id}{BATCH_SUFFIX}")
    try:
        table = _read_table(directory, batch_id, generation)
    except TrafficBatchError as exc:
        log.warning("traffic batch %s is unusable (%s): %s", batch_id, exc.reason, exc)
        rejected = rejected_frame([rejected_row(source, -1, exc.reason, {"batch_id": batch_id, "error": str(exc)})])
        return BatchValidation(batch_id, _empty_frame(), rejected, error=f"{exc.reason}: {exc}")
    keep: list[bool] = []
    rejected_rows: list[dict[str, object]] = []
    seen_ids: set[str] = set()
    for row, record in enumerate(table_records(table)):
        reason = _row_reason(record, max_text_chars, embedding_dim, seen_ids, generated=generation is not None)
        keep.append(reason is None)
        if reason is not None:
            rejected_rows.append(rejected_row(source, row, reason, record))
    valid = _with_batch_id(table.filter(pa.array(keep, pa.bool_())).cast(TRAFFIC_SCHEMA), batch_id).to_pandas()
    if rejected_rows:
        log.warning("traffic batch %s: %d of %d rows rejected", batch_id, len(rejected_rows), table.num_rows)
    return BatchValidation(batch_id, valid, rejected_frame(rejected_rows))


def validate_batches(directory: Path, batch_ids: Sequence[str], max_text_chars: int = MAX_TEXT_CHARS,
                     embedding_dim: int | None = None, generation: GenerationPolicy | None = None) -> TrafficWindow:
    """validate_batch for each id, in order."""
    return TrafficWindow([validate_batch(directory, b, max_text_chars, embedding_dim, generation) for b in batch_ids])


def quarantine_batch(directory: Path, validation: BatchValidation, quarantine_dir: Path) -> Path | None:
    """Keep what validation rejected, with its reason, under `quarantine_dir`; return the reasons file (or None).

    Rejected rows go to `<quarantine_dir>/<batch id>.rejected.parquet` (written atomically, same content on a
    repeat). An unusable batch file is also moved there, out of the traffic folder, so that no reader trips on it
    again; the rows of a usable batch stay in its file.
    """
    if validation.rejected.empty:
        return None
    name = f"{validation.batch_id}{BATCH_SUFFIX}"
    # Both names are checked: an id such as '../../x' neither moves a file from, nor writes one to, another folder.
    source = path_inside(Path(directory), name, "traffic batch")
    reasons = write_parquet_atomic(validation.rejected,
                                   path_inside(Path(quarantine_dir), f"{validation.batch_id}.rejected.parquet",
                                               "quarantine file"))
    if not validation.usable and source.is_file():
        shutil.move(source, Path(quarantine_dir) / name)
        log.warning("moved unusable traffic batch %s to %s", name, quarantine_dir)
    return reasons
