"""Data assets' bodies: ingested raw examples and the curated training set (modelops.defs.customisation wraps them)."""

# No `from __future__ import annotations` here: Dagster reads config/resource annotations at definition time.

from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional

import dagster as dg

from modelops.core.defaults import GENERATED_ROWS
from modelops.core.markdown import frame_table
from modelops.defs.metadata import counts_table, path_metadata
from modelops.defs.resources import DataLake, DataLakes, customisation_of

if TYPE_CHECKING:  # pandas loads with the first asset that reads data, not with the code location
    import pandas as pd

    from modelops.core.data.curation_run import CuratedSet

RAW_EXAMPLES_FILE = "raw_examples.parquet"


class RawExamplesConfig(dg.Config):
    """Where examples come from: user files in data/raw/ ('files'), the built-in generator, or 'auto' (files if any)."""

    source: Literal["auto", "files", "generator"] = "auto"
    text_column: Optional[str] = None  # None: the customisation's text_column setting ("text" unless set)
    label_column: Optional[str] = None  # None: the customisation's label_column setting ("label" unless set)
    generator_rows: int = GENERATED_ROWS
    generator_seed: int = 0


def _columns(config: RawExamplesConfig, lake: DataLake) -> tuple[str, str]:
    """The text and label columns: the run config's, else the customisation's settings."""
    return config.text_column or lake.text_column, config.label_column or lake.label_column


def _load_raw(config: RawExamplesConfig, lake: DataLake, context: dg.AssetExecutionContext):
    """Valid and quarantined rows of the raw files (or the generator): text,label examples for a classifier,
    prompt,response instructions (the built-in task: ticket -> JSON, instructions.extraction_tasks) for a causal LM."""
    from modelops.core.data.datagen import generate_corpus
    from modelops.core.data.instructions import extraction_tasks, read_instructions, validate_instructions
    from modelops.core.data.schema import ValidationResult, list_example_files, read_examples, validate_records

    settings = lake.settings
    text_column, label_column = _columns(config, lake)
    files = list_example_files(settings.raw_dir)
    if config.source == "files" and not files:
        raise dg.Failure(f"source='files' but {settings.raw_dir} holds no .csv, .parquet or .jsonl file.")
    if files and config.source != "generator":
        context.log.info(f"ingesting {len(files)} file(s) from {settings.raw_dir}")
        return ValidationResult.concat([
            read_instructions(f, settings.max_text_chars) if lake.generative
            else read_examples(f, text_column, label_column, settings.max_text_chars) for f in files
        ])
    context.log.info(f"generating {config.generator_rows} examples (seed {config.generator_seed})")
    corpus = generate_corpus(config.generator_rows, seed=config.generator_seed)
    if lake.generative:
        return validate_instructions(extraction_tasks(corpus).to_dict(orient="records"), "generator",
                                     settings.max_text_chars)
    return validate_records(corpus.to_dict(orient="records"), "generator", max_chars=settings.max_text_chars)


def _expected_columns(config: RawExamplesConfig, lake: DataLake) -> str:
    if lake.generative:
        return "the prompt and response columns"
    text_column, label_column = _columns(config, lake)
    return f"the text/label column names (text_column={text_column!r}, label_column={label_column!r})"


def _valid_metadata(valid: "pd.DataFrame", path: Path) -> dict:
    """Row count, path, label histogram (classifier examples) and a preview of the valid raw rows."""
    histogram = {"label_histogram": counts_table(valid["label"].value_counts().to_dict(), "label")} \
        if "label" in valid.columns else {}
    return {"dagster/row_count": len(valid), "path": path_metadata(path), **histogram,
            "preview": dg.MetadataValue.md(frame_table(valid.head(10), index=False))}


def raw_examples(context: dg.AssetExecutionContext, config: RawExamplesConfig,
                 lakes: DataLakes) -> dg.MaterializeResult:
    """Labelled examples from data/raw/ (CSV, Parquet, JSONL) or the generator; bad rows quarantined with a reason.
    A causal-lm customisation reads prompt,response rows (the generator: support ticket -> JSON)."""
    from modelops.core.atomic import write_parquet_atomic

    lake = lakes.of(customisation_of(context))
    result = _load_raw(config, lake, context)
    metadata: dict[str, dg.RawMetadataValue] = {
        "received_rows": result.received, "valid_rows": len(result.valid), "quarantined_rows": len(result.rejected),
    }
    if not result.rejected.empty:
        quarantine = lake.settings.quarantine_dir / f"raw_examples-{context.run_id[:8]}.parquet"
        write_parquet_atomic(result.rejected, quarantine)
        metadata["quarantine_path"] = path_metadata(quarantine)
        metadata["quarantine_reasons"] = counts_table(result.rejected["reason"].value_counts().to_dict(), "reason")
        context.log.warning(f"{len(result.rejected)} rows quarantined to {quarantine}")
    if result.valid.empty:
        raise dg.Failure(f"No valid examples among {result.received} received rows; see "
                         f"{metadata.get('quarantine_path', 'quarantine')} for the reasons. Check "
                         f"{_expected_columns(config, lake)}.", metadata=metadata)
    path = write_parquet_atomic(result.valid, Path(lake.home) / "assets" / RAW_EXAMPLES_FILE)
    return dg.MaterializeResult(metadata={**metadata, **_valid_metadata(result.valid, path)})


def _pending_table(pending: list) -> str:
    """Labels held back from training, what they have and what they still need (markdown)."""
    if not pending:
        return "No label is waiting for examples."
    from modelops.core.data.curate import SplitFractions

    fractions = SplitFractions()
    rows = [f"| {p.label} | {p.train} | {p.test} | {p.needs_train} | {p.needs_test} |" for p in pending]
    header = ["| pending label | train | test | needs train | needs test |", "|---|---:|---:|---:|---:|"]
    train_share = 1 - fractions.validation - fractions.test
    return "\n".join([*header, *rows]) + (f"\n\nAbout {train_share:.0%} of new examples land in train and "
                                          f"{fractions.test:.0%} in test (stable hash split).")


def read_raw_examples(lake: DataLake) -> "pd.DataFrame":
    path = Path(lake.home) / "assets" / RAW_EXAMPLES_FILE
    if not path.is_file():
        raise dg.Failure(f"{path} is missing: materialise raw_examples first.")
    import pandas as pd

    return pd.read_parquet(path)


def read_curated(lake: DataLake) -> tuple["pd.DataFrame", dict]:
    """The latest curated training set and its record (hash, path, counts); fails when the file no longer has the
    content hash recorded for it, so every hash modelops records (MLflow tags, lineage) names the data really used."""
    import pandas as pd

    from modelops.core.data.curate import content_hash
    from modelops.core.data.instructions import instructions_hash

    record = lake.read_record("curated_training_set")
    frame = pd.read_parquet(record["path"])
    found = (instructions_hash if lake.generative else content_hash)(frame)
    if found != record["content_hash"]:
        raise dg.Failure(f"The curated set {record['path']} has content hash {found[:16]}, not the recorded "
                         f"{record['content_hash'][:16]}: it changed after curation. Materialise "
                         "curated_training_set again.")
    return frame, record


def curated_training_set(context: dg.AssetExecutionContext, lakes: DataLakes) -> dg.MaterializeResult:
    """Normalised, deduplicated, PII-redacted examples with a stable train/validation/test split and a content hash
    (a causal-lm customisation's: prompts and responses redacted, one response per prompt, split by prompt)."""
    from modelops.core.data.curation_run import CurationError, curate_folders, pending_text

    lake = lakes.of(customisation_of(context))
    if lake.generative:
        return _curated_instructions(context, lake)
    settings = lake.settings
    try:
        found = curate_folders(read_raw_examples(lake), settings.feedback_dir, settings.production_dir,
                               settings.curated_dir,
                               settings.quarantine_dir / "feedback" / f"feedback-{context.run_id[:8]}.parquet",
                               settings.max_text_chars)
    except CurationError as error:
        raise dg.Failure(str(error)) from error
    if found.feedback_quarantine:
        context.log.warning(f"{len(found.feedback.rejected)} feedback rows quarantined to {found.feedback_quarantine}")
    if found.pending:
        context.log.warning(f"held back until they have enough examples ({found.held_back_path}): "
                            f"{pending_text(found.pending)}")
    lake.write_record("curated_training_set", {
        "path": str(found.path), "content_hash": found.content_hash, "rows": len(found.curated),
        "splits": found.curated["split"].value_counts().to_dict(), "feedback_rows": found.report.feedback_rows,
        "pending_labels": {p.label: {"train": p.train, "test": p.test, "needs_train": p.needs_train,
                                     "needs_test": p.needs_test} for p in found.pending}})
    context.log.info(f"curated {len(found.curated)} examples, hash {found.content_hash[:12]}")
    return dg.MaterializeResult(metadata=_curated_metadata(found))


def _curated_instructions(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """curated_training_set for a causal-lm customisation: instructions.curate_instructions on the raw rows."""
    from modelops.core.data.curation_run import CurationError, curate_instruction_set

    try:
        found = curate_instruction_set(read_raw_examples(lake), lake.settings.feedback_dir, lake.settings.curated_dir,
                                       lake.max_text_chars)
    except CurationError as error:
        raise dg.Failure(str(error)) from error
    splits = found.curated["split"].value_counts().to_dict()
    lake.write_record("curated_training_set", {"path": str(found.path), "content_hash": found.content_hash,
                                               "rows": len(found.curated), "splits": splits})
    context.log.info(f"curated {len(found.curated)} instructions, hash {found.content_hash[:12]}")
    report = found.report
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(found.curated), "content_hash": found.content_hash, "path": path_metadata(found.path),
        "input_rows": report.input_rows, "feedback_rows": report.feedback_rows,
        "exact_duplicates_removed": report.exact_duplicates,
        "normalised_duplicates_removed": report.normalised_duplicates,
        "response_conflicts_resolved": report.label_conflicts,
        "pii_redactions": counts_table(report.pii_redactions, "pii_type"),
        "pii_redactions_total": sum(report.pii_redactions.values()), "split_counts": counts_table(splits, "split"),
        "preview": dg.MetadataValue.md(frame_table(found.curated.head(5), index=False))})


def _curated_metadata(found: "CuratedSet") -> dict:
    """What curation did: feedback read and quarantined, labels held back, duplicates, PII, splits."""
    from modelops.core.data.curate import label_counts

    feedback, report, curated = found.feedback, found.report, found.curated
    metadata: dict[str, dg.RawMetadataValue] = {
        "feedback_received_rows": feedback.received, "feedback_valid_rows": len(feedback.valid),
        "feedback_quarantined_rows": len(feedback.rejected)}
    if found.feedback_quarantine:
        metadata["feedback_quarantine_path"] = path_metadata(found.feedback_quarantine)
        metadata["feedback_quarantine_reasons"] = counts_table(
            feedback.rejected["reason"].value_counts().to_dict(), "reason")
    return {
        **metadata,
        "pending_labels": dg.MetadataValue.md(_pending_table(found.pending)),
        "pending_rows": found.held_back_rows,
        "dagster/row_count": len(curated),
        "content_hash": found.content_hash,
        "path": path_metadata(found.path),
        "input_rows": report.input_rows,
        "feedback_rows": report.feedback_rows,
        "exact_duplicates_removed": report.exact_duplicates,
        "normalised_duplicates_removed": report.normalised_duplicates,
        "label_conflicts_resolved": report.label_conflicts,
        "pii_redactions": counts_table(report.pii_redactions, "pii_type"),
        "pii_redactions_total": sum(report.pii_redactions.values()),
        "split_counts": counts_table(curated["split"].value_counts().to_dict(), "split"),
        "labels_by_split": dg.MetadataValue.md(frame_table(label_counts(curated))),
    }
