"""Curation: normalise, redact PII, deduplicate, merge feedback, split stably, hash the result."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

CURATED_COLUMNS = ["id", "text", "label", "split", "source"]
SPLITS = ("train", "validation", "test")

# Order matters: IBANs and cards before phones, which would otherwise swallow their digits.
PII_PATTERNS: dict[str, re.Pattern[str]] = {
    "EMAIL": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "IBAN": re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b"),
    "CARD": re.compile(r"\b(?:\d{4}[ -]?){3}\d{4}\b|\b\d{4}[ -]?\d{6}[ -]?\d{5}\b"),
    # Digit groups with optional +country and (area) code; _is_pii keeps only 9 to 15 digits (not dates, amounts).
    "PHONE": re.compile(r"(?<![\w#/.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]?\d{2,5}){1,4}(?![\w/])"),
}


MIN_TRAIN_EXAMPLES_PER_LABEL = 10  # a label trains only with at least this many training examples...
MIN_TEST_EXAMPLES_PER_LABEL = 3  # ...and this many test examples to be evaluated on


@dataclass(frozen=True)
class PendingLabel:
    """A label held back from training until it has enough examples (new intents grow in without blocking)."""

    label: str
    train: int
    test: int

    @property
    def needs_train(self) -> int:
        return max(0, MIN_TRAIN_EXAMPLES_PER_LABEL - self.train)

    @property
    def needs_test(self) -> int:
        return max(0, MIN_TEST_EXAMPLES_PER_LABEL - self.test)


@dataclass(frozen=True)
class SplitFractions:
    validation: float = 0.1
    test: float = 0.15


@dataclass
class CurationReport:
    """What curation did, for metadata: every input row is accounted for."""

    input_rows: int = 0
    exact_duplicates: int = 0
    normalised_duplicates: int = 0
    label_conflicts: int = 0
    feedback_rows: int = 0
    pii_redactions: dict[str, int] = field(default_factory=dict)


def normalise_text(text: str) -> str:
    """Unicode NFKC, control characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def _is_pii(kind: str, match: str) -> bool:
    return kind != "PHONE" or 9 <= sum(ch.isdigit() for ch in match) <= 15


def redact_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace e-mails, IBANs, card and phone numbers by typed placeholders such as <EMAIL>."""
    counts: dict[str, int] = {}
    for kind, pattern in PII_PATTERNS.items():

        def replace(match: re.Match[str], kind: str = kind) -> str:
            if not _is_pii(kind, match.group()):
                return match.group()
            counts[kind] = counts.get(kind, 0) + 1
            return f"<{kind}>"

        text = pattern.sub(replace, text)
    return text, counts


def redact_texts(texts: Iterable[str], normalise: Callable[[str], str], counts: dict[str, int]) -> list[str]:
    """Each text normalised, then PII-redacted; `counts` adds up the redactions per PII type."""
    redacted = []
    for text in texts:
        clean, found = redact_pii(normalise(text))
        redacted.append(clean)
        for kind, n in found.items():
            counts[kind] = counts.get(kind, 0) + n
    return redacted


def clean_text(text: str) -> str:
    """The text as training sees it: normalised, then PII-redacted (idempotent)."""
    return redact_pii(normalise_text(text))[0]


def pii_residue(texts: pd.Series) -> dict[str, int]:
    """How many texts still contain each PII type (should be zero after curation)."""
    return {kind: int(sum(any(_is_pii(kind, m.group()) for m in pattern.finditer(t)) for t in texts))
            for kind, pattern in PII_PATTERNS.items()}


def example_id(normalised_text: str) -> str:
    """Stable id of an example: hash of its case-folded normalised text (near-duplicates share it)."""
    return hashlib.sha256(normalised_text.casefold().encode("utf-8")).hexdigest()[:16]


def assign_split(ids: pd.Series, fractions: SplitFractions) -> pd.Series:
    """Split from a hash of the id alone, so an example never changes split when data is added."""
    buckets = ids.map(lambda i: int(hashlib.sha256(f"split:{i}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF)
    return pd.Series(
        ["test" if b < fractions.test else "validation" if b < fractions.test + fractions.validation else "train"
         for b in buckets], index=ids.index, dtype=str)


def resolve_labels(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per id (columns id, text, label, source) and how many ids had conflicting labels: feedback beats raw
    data, then the most frequent label, then the alphabetically first."""
    frame = frame.assign(_priority=frame["source"].str.startswith("feedback").astype(int))
    votes = frame.groupby(["id", "label"], sort=False).agg(n=("text", "size"),
                                                           priority=("_priority", "max")).reset_index()
    conflicts = int((votes.groupby("id")["label"].nunique() > 1).sum())
    winners = votes.sort_values(["id", "priority", "n", "label"],
                                ascending=[True, False, False, True]).drop_duplicates("id")
    first = frame.drop_duplicates("id")[["id", "text", "source"]]
    return first.merge(winners[["id", "label"]], on="id"), conflicts


def curate(raw: pd.DataFrame, feedback: pd.DataFrame | None = None, fractions: SplitFractions | None = None
           ) -> tuple[pd.DataFrame, CurationReport]:
    """Build the curated training set from valid raw examples (text, label, source) and labelled feedback."""
    fractions = fractions or SplitFractions()
    frames = [raw[["text", "label", "source"]]]
    if feedback is not None and not feedback.empty:
        frames.append(feedback[["text", "label", "source"]])
    combined = pd.concat(frames, ignore_index=True)
    report = CurationReport(input_rows=len(combined), feedback_rows=0 if feedback is None else len(feedback))
    report.exact_duplicates = int(combined.duplicated(["text", "label"]).sum())
    combined = combined.drop_duplicates(["text", "label"]).copy()
    combined["text"] = redact_texts(combined["text"], normalise_text, report.pii_redactions)
    combined["label"] = combined["label"].map(normalise_text)
    combined["id"] = combined["text"].map(example_id)
    resolved, report.label_conflicts = resolve_labels(combined)
    report.normalised_duplicates = len(combined) - len(resolved)
    resolved["split"] = assign_split(resolved["id"], fractions)
    curated = resolved[CURATED_COLUMNS].sort_values("id").reset_index(drop=True)
    return curated, report


def split_counts(curated: pd.DataFrame) -> pd.DataFrame:
    """Examples per label and split (columns train, validation, test; 0 where a label has none)."""
    return label_counts(curated).reindex(columns=["train", "validation", "test"], fill_value=0)


def short_labels(counts: pd.DataFrame) -> pd.DataFrame:
    """The rows of `split_counts` whose label has too few train or test examples to train and be evaluated."""
    return counts[(counts["train"] < MIN_TRAIN_EXAMPLES_PER_LABEL) | (counts["test"] < MIN_TEST_EXAMPLES_PER_LABEL)]


def hold_back_short_labels(curated: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[PendingLabel]]:
    """Split a curated set into what trains (every label with enough train and test examples), the rows of the labels
    still short (kept, to join a later run once labelled feedback fills them up) and those labels' counts."""
    short = short_labels(split_counts(curated))
    pending = [PendingLabel(str(label), int(row["train"]), int(row["test"])) for label, row in short.iterrows()]
    held = curated["label"].isin(short.index)
    return curated[~held].reset_index(drop=True), curated[held].reset_index(drop=True), pending


def content_hash(curated: pd.DataFrame, columns: Sequence[str] = ("id", "text", "label", "split")) -> str:
    """sha256 of a canonical serialisation: rows sorted by id, JSON lines of `columns` (a classifier set's
    [id, text, label, split] by default)."""
    digest = hashlib.sha256()
    for row in curated.sort_values("id")[list(columns)].itertuples(index=False):
        digest.update(json.dumps(list(row), ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def leakage(curated: pd.DataFrame, text_column: str = "text") -> pd.DataFrame:
    """Ids (or identical texts; prompts for instructions) that occur in more than one split: must be empty."""
    by_id = curated.groupby("id")["split"].nunique()
    by_text = curated.groupby(text_column)["split"].nunique()
    leaked = curated[text_column].isin(by_text[by_text > 1].index)
    leaked_ids = set(by_id[by_id > 1].index) | set(curated[leaked]["id"])
    return curated[curated["id"].isin(leaked_ids)]


def label_counts(curated: pd.DataFrame) -> pd.DataFrame:
    """Examples per label (rows) and split (columns)."""
    return curated.pivot_table(index="label", columns="split", values="id", aggfunc="count", fill_value=0)
