"""The capture side of production traffic: TRAFFIC_SCHEMA, one TrafficRecord per served prediction (GENERATION_SCHEMA
and GenerationRecord for a generative customisation's responses), and the thread-safe writer of atomically written
Parquet batch files (the serving process owns one per customisation)."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from modelops.core.atomic import write_atomic

log = logging.getLogger(__name__)

TRAFFIC_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("timestamp", pa.timestamp("us", tz="UTC")),
    ("text", pa.string()),
    ("predicted_label", pa.string()),
    ("confidence", pa.float32()),
    ("model_name", pa.string()),
    ("model_version", pa.string()),
    ("latency_ms", pa.float32()),
    ("embedding", pa.list_(pa.float32())),
    ("abstained", pa.bool_()),  # the client got the fallback label; predicted_label is still the model's best guess
    ("response_tokens", pa.int32()),  # a generative model's response length (null for a classifier's prediction)
])
# Columns that batches written before they existed lack, and their value there.
OPTIONAL_COLUMNS: dict[str, bool | None] = {"abstained": False, "response_tokens": None}
BATCH_PREFIX = "batch-"
BATCH_SUFFIX = ".parquet"
BATCH_ID_PATTERN = re.compile(rf"^{BATCH_PREFIX}[0-9]{{8}}T[0-9]{{12}}-[0-9a-f]{{8}}$")  # what TrafficWriter names


class TrafficWriterClosedError(RuntimeError):
    """Records were appended to a TrafficWriter after close()."""


@dataclass(frozen=True)
class TrafficRecord:
    """One served prediction, as captured (one row of TRAFFIC_SCHEMA)."""

    id: str
    timestamp: datetime
    text: str
    predicted_label: str
    confidence: float
    model_name: str
    model_version: str
    latency_ms: float
    embedding: Sequence[float]
    abstained: bool = False
    response_tokens: int | None = None


GENERATION_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("timestamp", pa.timestamp("us", tz="UTC")),
    ("prompt", pa.string()),  # as the model saw it: normalised and PII-redacted as curation does (clean_prompt)
    ("response", pa.string()),
    ("model_name", pa.string()),
    ("model_version", pa.string()),
    ("latency_ms", pa.float32()),
    ("prompt_tokens", pa.int32()),  # as the model saw the prompt (cut to the served max_prompt_tokens)
    ("response_tokens", pa.int32()),  # the end-of-sequence token included when generated
    ("mean_logprob", pa.float32()),  # mean log-probability of the response tokens: a label-free confidence
    ("finished", pa.bool_()),  # False: cut at max_new_tokens
    ("embedding", pa.list_(pa.float32())),  # the prompt's mean input-token embedding
])


@dataclass(frozen=True)
class GenerationRecord:
    """One served response, as captured (one row of GENERATION_SCHEMA)."""

    id: str
    timestamp: datetime
    prompt: str
    response: str
    model_name: str
    model_version: str
    latency_ms: float
    prompt_tokens: int
    response_tokens: int
    mean_logprob: float
    finished: bool
    embedding: Sequence[float]


assert [f.name for f in fields(TrafficRecord)] == TRAFFIC_SCHEMA.names, "TrafficRecord follows TRAFFIC_SCHEMA"
assert [f.name for f in fields(GenerationRecord)] == GENERATION_SCHEMA.names, "GenerationRecord: GENERATION_SCHEMA"


def schema_name(schema: pa.Schema) -> str:
    """The name an error message gives a traffic schema."""
    return "GENERATION_SCHEMA" if schema.equals(GENERATION_SCHEMA) else "TRAFFIC_SCHEMA"


def records_to_table(records: Sequence[TrafficRecord | GenerationRecord], schema: pa.Schema = TRAFFIC_SCHEMA
                     ) -> pa.Table:
    """Records -> a table of `schema`; raises ValueError for a record that does not fit the schema."""
    columns = {name: [getattr(r, name) for r in records] for name in schema.names}
    columns["embedding"] = [list(e) for e in columns["embedding"]]
    try:
        return pa.Table.from_pydict(columns, schema=schema)
    except (pa.ArrowException, AttributeError, TypeError, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"Traffic records do not match {schema_name(schema)}: {exc}") from exc


class TrafficWriter:
    """Thread-safe appender of traffic records into atomically written Parquet batch files.

    A batch is written when the buffer holds max_rows records, when max_age_seconds have passed since the first
    buffered record (checked on append() and flush_if_due()), and on close(). Files are named
    `batch-<UTC yyyymmddTHHMMSSffffff>-<8 hex>.parquet`; names from one writer sort in write order, and a file
    becomes visible only complete (hidden `.…tmp` file, then os.replace).
    """

    def __init__(self, directory: Path, max_rows: int = 1000, max_age_seconds: float = 60.0,
                 schema: pa.Schema = TRAFFIC_SCHEMA) -> None:
        if max_rows < 1 or max_age_seconds <= 0:
            raise ValueError(f"max_rows must be >= 1 and max_age_seconds > 0, got {max_rows}, {max_age_seconds}")
        self.directory = Path(directory)
        self.schema = schema  # TRAFFIC_SCHEMA (a classifier's predictions) or GENERATION_SCHEMA (responses)
        self.max_rows = max_rows
        self.max_age_seconds = max_age_seconds
        self._buffer: list[pa.Table] = []
        self._rows = 0
        self._first_at: float | None = None  # time.monotonic() of the oldest buffered record
        self._closed = False
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._buffer_lock = threading.Lock()  # guards the buffer; held briefly
        self._write_lock = threading.Lock()  # serialises writes so file names and completion order agree

    @property
    def buffered_rows(self) -> int:
        return self._rows

    def append(self, records: Sequence[TrafficRecord | GenerationRecord]) -> None:
        """Buffer records (validated against the schema now), then write full or old batches.

        Raises only when the records were not buffered (schema mismatch: ValueError; closed writer). A failed batch
        write is logged and its rows stay buffered for the next attempt; flush() and close() do raise it.
        """
        if not records:
            return
        table = records_to_table(records, self.schema)
        with self._buffer_lock:
            if self._closed:
                raise TrafficWriterClosedError(f"TrafficWriter for {self.directory} is closed; records not captured")
            self._buffer.append(table)
            self._rows += table.num_rows
            if self._first_at is None:
                self._first_at = time.monotonic()
        with contextlib.suppress(Exception):  # already logged by _write; the rows are back in the buffer
            self.flush_if_due()

    def flush_if_due(self) -> Path | None:
        """Write full batches (max_rows each) and, when the oldest record is too old, the rest; return the last file."""
        written: Path | None = None
        while self._is_due():
            path = self._write(full_only=not self._is_old())
            if path is None:
                break
            written = path
        return written

    def flush(self) -> Path | None:
        """Write everything buffered now (in files of at most max_rows); return the last file or None."""
        written: Path | None = None
        while True:
            path = self._write(full_only=False)
            if path is None:
                return written
            written = path

    def close(self) -> None:
        """Write what is buffered and refuse further records. Idempotent."""
        with self._buffer_lock:
            self._closed = True
        self.flush()

    def _is_old(self) -> bool:
        first = self._first_at
        return first is not None and time.monotonic() - first >= self.max_age_seconds

    def _is_due(self) -> bool:
        return self._rows >= self.max_rows or (self._rows > 0 and self._is_old())

    def _take(self, full_only: bool) -> pa.Table | None:
        """Remove up to max_rows rows from the front of the buffer (only a full batch when full_only)."""
        with self._buffer_lock:
            if self._rows == 0 or (full_only and self._rows < self.max_rows):
                return None
            table = pa.concat_tables(self._buffer)
            batch, rest = table.slice(0, self.max_rows), table.slice(self.max_rows)
            self._buffer = [rest] if rest.num_rows else []
            self._rows = rest.num_rows
            if not rest.num_rows:
                self._first_at = None
            return batch

    def _give_back(self, batch: pa.Table) -> None:
        """Put a batch whose write failed back at the front of the buffer."""
        with self._buffer_lock:
            self._buffer.insert(0, batch)
            self._rows += batch.num_rows
            if self._first_at is None:
                self._first_at = time.monotonic()

    def _write(self, full_only: bool) -> Path | None:
        with self._write_lock:
            batch = self._take(full_only)
            if batch is None:
                return None
            path = self.directory / f"{BATCH_PREFIX}{self._next_stamp()}-{uuid.uuid4().hex[:8]}{BATCH_SUFFIX}"
            try:
                write_atomic(path, lambda tmp: pq.write_table(batch, tmp))
            except BaseException:
                self._give_back(batch)
                log.exception("Writing traffic batch %s failed; %d rows kept in the buffer", path, batch.num_rows)
                raise
            log.info("Wrote traffic batch %s (%d rows)", path.name, batch.num_rows)
            return path

    def _next_stamp(self) -> str:
        """A UTC timestamp strictly later than the previous one from this writer (call under _write_lock)."""
        now = datetime.now(UTC)
        if now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return now.strftime("%Y%m%dT%H%M%S%f")
