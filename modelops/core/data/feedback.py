"""Labelled feedback: `id,label` files in data/feedback/ joined with captured traffic to become training examples.

Every feedback row ends up valid or quarantined with a reason (schema.Reason): a missing, malformed or
undecodable id or label, a label superseded by a later one for the same id (`duplicate_id`: the latest file, then
the latest row, wins), or a whole file that cannot be read (one row with row -1). The files themselves stay where
they are; the caller writes the rejected rows to the quarantine folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from modelops.core.data.schema import (
    InputFileError,
    Reason,
    UnsafePathError,
    ValidationResult,
    display_name,
    empty_frame,
    empty_rejected,
    file_rejection,
    id_value,
    label_value,
    line_reason,
    list_example_files,
    path_inside,
    read_file_records,
    rejected_frame,
    rejected_row,
)

log = logging.getLogger(__name__)

FEEDBACK_COLUMNS = ["id", "label", "source"]


def _empty_feedback() -> pd.DataFrame:
    return empty_frame(FEEDBACK_COLUMNS)


def read_feedback_file(feedback_dir: Path, name: str) -> ValidationResult:
    """One feedback file of `feedback_dir` split into valid (id, label, source) and quarantined rows.

    `name` must be a plain file name inside the folder: UnsafePathError (e.g. for '../../etc/passwd') otherwise.
    `valid` also carries the input `row` number, so that superseded duplicates can be quarantined precisely.
    """
    path = path_inside(Path(feedback_dir), name, "feedback file")
    records, rejected = read_file_records(path, ["id", "label"])
    if rejected is not None:
        return ValidationResult(_empty_feedback(), rejected)
    source = display_name(path)
    valid_rows: list[dict[str, object]] = []
    rejected_rows: list[dict[str, object]] = []
    for row, record in enumerate(records):
        identifier, reason = id_value(record.get("id"))
        label, label_reason = label_value(record.get("label"))
        reason = line_reason(record) or reason or label_reason
        if reason is None:
            valid_rows.append({"id": identifier, "label": label, "source": source, "row": row})
        else:
            rejected_rows.append(rejected_row(source, row, reason, record))
    valid = pd.DataFrame(valid_rows, columns=[*FEEDBACK_COLUMNS, "row"]) if valid_rows else _empty_feedback()
    return ValidationResult(valid, rejected_frame(rejected_rows))


def read_feedback(feedback_dir: Path) -> ValidationResult:
    """All feedback files: `valid` holds one (id, label, source) per id, the latest label; the rest is `rejected`.

    valid + rejected == received (rows of every file, plus one per unreadable file).
    """
    results = []
    for path in list_example_files(Path(feedback_dir)):
        try:
            results.append(read_feedback_file(feedback_dir, path.name))
        except UnsafePathError as exc:  # a link to a file outside the folder: refused, recorded, not read
            results.append(ValidationResult(_empty_feedback(),
                                            file_rejection(path, InputFileError(str(exc), Reason.OUTSIDE_FOLDER))))
    valid = [r.valid for r in results if not r.valid.empty]
    rejected = [r.rejected for r in results if not r.rejected.empty]
    feedback = pd.concat(valid, ignore_index=True) if valid else pd.DataFrame(columns=[*FEEDBACK_COLUMNS, "row"])
    superseded = feedback.duplicated("id", keep="last")
    if superseded.any():
        winner = feedback.drop_duplicates("id", keep="last").set_index("id")
        rejected.append(rejected_frame([
            rejected_row(r.source, int(r.row), Reason.DUPLICATE_ID,
                         {"id": r.id, "label": r.label,
                          "superseded_by": f"{winner.at[r.id, 'source']} row {int(winner.at[r.id, 'row'])}"})
            for r in feedback[superseded].itertuples()]))
    result = ValidationResult(
        feedback[~superseded][FEEDBACK_COLUMNS].reset_index(drop=True) if len(feedback) else _empty_feedback(),
        pd.concat(rejected, ignore_index=True) if rejected else empty_rejected(),
    )
    if not result.rejected.empty:
        log.warning("feedback in %s: %d of %d rows rejected (%s)", feedback_dir, len(result.rejected), result.received,
                    result.rejected["reason"].value_counts().to_dict())
    return result


def labelled_feedback(production_dir: Path, feedback: pd.DataFrame, max_text_chars: int = 2000) -> pd.DataFrame:
    """Valid captured traffic that received a label: columns text, label, source ('feedback:<batch id>').

    `feedback` is read_feedback(...).valid. Unusable batches and invalid traffic rows are left out (the drift
    sensor quarantines them); ids that match no captured prediction yet are counted in the log.
    """
    from modelops.core.monitoring.traffic import list_batches, validate_batches

    empty = pd.DataFrame({"text": pd.Series(dtype=str), "label": pd.Series(dtype=str), "source": pd.Series(dtype=str)})
    if feedback.empty:
        return empty
    window = validate_batches(production_dir, list_batches(production_dir), max_text_chars)
    for batch in window.unusable:
        log.warning("traffic batch %s left out of the feedback join: %s", batch.batch_id, batch.error)
    traffic = window.valid
    if traffic.empty:
        return empty
    joined = traffic[["id", "text", "batch_id"]].merge(feedback[["id", "label"]], on="id", how="inner")
    unknown = len(feedback) - len(joined)
    if unknown:
        log.warning("%d feedback ids match no captured prediction", unknown)
    joined["source"] = "feedback:" + joined["batch_id"].astype(str)
    return joined[["text", "label", "source"]].reset_index(drop=True)
