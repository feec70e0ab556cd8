"""One curation of a customisation's folders: ingested raw examples plus valid labelled feedback become the curated
set (written under its content hash), labels still short of examples are held back, bad feedback is quarantined."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from modelops.core.data.curate import CurationReport, PendingLabel
    from modelops.core.data.schema import ValidationResult


class CurationError(ValueError):
    """Nothing can be trained on as the data stands; the message says what to add."""


@dataclass(frozen=True)
class CuratedSet:
    """The curated set, where it was written, what curation did, and what it held back or quarantined."""

    curated: pd.DataFrame
    content_hash: str
    path: Path
    report: CurationReport
    pending: list[PendingLabel]
    held_back_rows: int
    held_back_path: Path | None
    feedback: ValidationResult  # the feedback files read: received, valid, rejected rows
    feedback_quarantine: Path | None


def pending_text(pending: list[PendingLabel]) -> str:
    return ", ".join(f"{p.label} (needs {p.needs_train} more train / {p.needs_test} more test examples)"
                     for p in pending)


def curate_folders(raw: pd.DataFrame, feedback_dir: Path, production_dir: Path, curated_dir: Path,
                   quarantine_file: Path, max_text_chars: int) -> CuratedSet:
    """Curate `raw` with the labelled feedback on captured traffic; rejected feedback rows go to `quarantine_file`.
    CurationError when every label is short of examples."""
    from modelops.core.atomic import write_parquet_atomic
    from modelops.core.data.curate import content_hash, curate, hold_back_short_labels
    from modelops.core.data.feedback import labelled_feedback, read_feedback

    labels = read_feedback(feedback_dir)
    quarantine = write_parquet_atomic(labels.rejected, quarantine_file) if not labels.rejected.empty else None
    every, report = curate(raw, labelled_feedback(production_dir, labels.valid, max_text_chars))
    curated, held_back, pending = hold_back_short_labels(every)
    if curated.empty:
        raise CurationError(f"Every label is short of examples to train on: {pending_text(pending)}. Add labelled "
                            "examples (data/raw/ or data/feedback/).")
    digest = content_hash(curated)
    path = write_parquet_atomic(curated, curated_dir / f"{digest}.parquet")
    kept = write_parquet_atomic(held_back, curated_dir / "pending" / f"{digest}.parquet") if pending else None
    return CuratedSet(curated, digest, path, report, pending, len(held_back), kept, labels, quarantine)


@dataclass(frozen=True)
class CuratedInstructions:
    """A generative customisation's curated instruction set, where it was written and what curation did."""

    curated: pd.DataFrame
    content_hash: str
    path: Path
    report: CurationReport


def curate_instruction_set(raw: pd.DataFrame, feedback_dir: Path, curated_dir: Path,
                           max_text_chars: int) -> CuratedInstructions:
    """Curate valid raw instructions (prompt, response, source) with the answers in `feedback_dir` (which win for the
    same prompt) and write the set under its hash in `curated_dir`. CurationError when there is nothing to curate."""
    import pandas as pd

    from modelops.core.atomic import write_parquet_atomic
    from modelops.core.data.instructions import curate_instructions, instructions_hash, read_instruction_feedback

    if raw.empty:
        raise CurationError("No instruction examples to curate: add prompt,response rows to data/raw/.")
    feedback = read_instruction_feedback(feedback_dir, max_text_chars)
    curated, report = curate_instructions(pd.concat([raw, feedback], ignore_index=True))
    report.feedback_rows = len(feedback)
    digest = instructions_hash(curated)
    return CuratedInstructions(curated, digest, write_parquet_atomic(curated, curated_dir / f"{digest}.parquet"),
                               report)
