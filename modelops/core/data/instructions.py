"""Instruction examples for generative customisations: `prompt` -> `response` rows validated (bad rows quarantined
with a reason), curated (normalised, PII-redacted in both columns, deduplicated by prompt, split stably, hashed), and
the built-in structured task (support ticket -> JSON with its intent and order id)."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pandas as pd

from modelops.core.data.curate import (
    CurationReport,
    SplitFractions,
    assign_split,
    content_hash,
    example_id,
    normalise_text,
    redact_pii,
    redact_texts,
    resolve_labels,
)
from modelops.core.data.schema import (
    Reason,
    ValidationResult,
    display_name,
    empty_frame,
    line_reason,
    read_file_records,
    rejected_frame,
    rejected_row,
    text_reason,
    utf8_or_bytes,
)
from modelops.core.defaults import MAX_TEXT_CHARS

INSTRUCTION_COLUMNS = ["id", "prompt", "response", "split", "source"]
RAW_INSTRUCTION_COLUMNS = ["prompt", "response", "source"]  # valid raw rows, before curation
HASHED_COLUMNS = ("id", "prompt", "response", "split")
EXTRACTION_INSTRUCTION = "Extract the intent and the order number of this support ticket as JSON."
ORDER_NUMBER = re.compile(r"#[A-Z]\d{5}\b")
_RESPONSE_REASONS = {Reason.MISSING_TEXT: Reason.MISSING_RESPONSE, Reason.EMPTY_TEXT: Reason.MISSING_RESPONSE,
                     Reason.TEXT_TOO_LONG: Reason.RESPONSE_TOO_LONG}


def _empty_instructions() -> pd.DataFrame:
    return empty_frame(RAW_INSTRUCTION_COLUMNS)


def validate_instructions(records: list[dict[str, object]], source: str,
                          max_chars: int = MAX_TEXT_CHARS) -> ValidationResult:
    """Split raw records into valid instructions (prompt, response, source) and quarantined rows with a reason."""
    valid, rejected = [], []
    for row, record in enumerate(records):
        prompt, response = record.get("prompt"), record.get("response")
        response_reason = text_reason(response, max_chars)
        if response_reason is not None:
            response_reason = _RESPONSE_REASONS.get(response_reason, response_reason)
        reason = line_reason(record) or text_reason(prompt, max_chars) or response_reason
        if reason is None:
            valid.append({"prompt": str(utf8_or_bytes(prompt)), "response": str(utf8_or_bytes(response)),
                          "source": source})
        else:
            rejected.append(rejected_row(source, row, reason, record))
    frame = pd.DataFrame(valid, columns=RAW_INSTRUCTION_COLUMNS) if valid else _empty_instructions()
    return ValidationResult(frame, rejected_frame(rejected))


def read_instructions(path: Path, max_chars: int = MAX_TEXT_CHARS) -> ValidationResult:
    """Read one CSV/Parquet/JSONL file of prompt,response rows and validate it; an unusable file becomes one
    quarantined row."""
    path = Path(path)
    records, rejected = read_file_records(path, ["prompt", "response"])
    if rejected is not None:
        return ValidationResult(_empty_instructions(), rejected)
    return validate_instructions(records, display_name(path), max_chars)


def read_instruction_feedback(feedback_dir: Path, max_chars: int = MAX_TEXT_CHARS) -> pd.DataFrame:
    """The valid prompt,response rows of every file in `feedback_dir` (e.g. a labelling queue answered), with source
    `feedback:<file>`: at curation they win over raw rows for the same prompt. Bad rows are left out here; curation
    and the sensor count only the valid."""
    from modelops.core.data.schema import list_example_files

    frames = [read_instructions(f, max_chars).valid for f in list_example_files(Path(feedback_dir))]
    valid = [f for f in frames if not f.empty]
    rows = pd.concat(valid, ignore_index=True) if valid else _empty_instructions()
    return rows.assign(source="feedback:" + rows["source"])


def normalise_multiline(text: str) -> str:
    """Unicode NFKC, control characters other than newlines and tabs removed, trailing spaces of each line dropped;
    line breaks and indentation stay (a prompt's layout, code and lists keep their meaning)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text.replace("\r\n", "\n") if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def clean_prompt(text: str) -> str:
    """A prompt as training sees it (normalised, PII-redacted; idempotent): what the served model is given too."""
    return redact_pii(normalise_multiline(text))[0]


def curate_instructions(raw: pd.DataFrame, fractions: SplitFractions | None = None
                        ) -> tuple[pd.DataFrame, CurationReport]:
    """The curated instruction set (INSTRUCTION_COLUMNS) from valid raw rows (prompt, response, source).

    An example is its prompt: prompts equal up to case and whitespace share an id and keep one response (feedback
    first, then the most frequent, then the alphabetically first; `label_conflicts` counts them), so one prompt can
    never sit in two splits. The split comes from the id alone, as for classifiers. A prompt keeps its line breaks:
    it reaches the model as `clean_prompt` gives it to the served model.
    """
    report = CurationReport(input_rows=len(raw))
    report.exact_duplicates = int(raw.duplicated(["prompt", "response"]).sum())
    rows = raw.drop_duplicates(["prompt", "response"])
    prompts = redact_texts(rows["prompt"], normalise_multiline, report.pii_redactions)
    responses = redact_texts(rows["response"], normalise_multiline, report.pii_redactions)
    frame = pd.DataFrame({"id": [example_id(normalise_text(p)) for p in prompts], "text": prompts, "label": responses,
                          "source": rows["source"].to_list()})
    resolved, report.label_conflicts = resolve_labels(frame)
    report.normalised_duplicates = len(frame) - len(resolved)
    resolved["split"] = assign_split(resolved["id"], fractions or SplitFractions())
    curated = resolved.rename(columns={"text": "prompt", "label": "response"})[INSTRUCTION_COLUMNS]
    return curated.sort_values("id").reset_index(drop=True), report


def instructions_hash(curated: pd.DataFrame) -> str:
    """sha256 of a curated instruction set (rows by id: id, prompt, response, split)."""
    return content_hash(curated, HASHED_COLUMNS)


def extraction_tasks(tickets: pd.DataFrame) -> pd.DataFrame:
    """Labelled tickets (text, label) -> the built-in structured task (prompt, response): the response is the JSON
    object {"intent": <label>, "order_number": <the first order number in the ticket, or null>}."""
    prompts, responses = [], []
    for text, label in zip(tickets["text"], tickets["label"], strict=True):
        order = ORDER_NUMBER.search(text)
        prompts.append(f"{EXTRACTION_INSTRUCTION}\nTicket: {text}\nJSON:")
        responses.append(json.dumps({"intent": label, "order_number": order.group() if order else None}))
    return pd.DataFrame({"prompt": prompts, "response": responses})
