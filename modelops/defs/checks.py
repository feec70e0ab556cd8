"""Asset checks' bodies: guards on the curated set (modelops.defs.customisation attaches them to each customisation)."""

# No `from __future__ import annotations` here: Dagster reads config/resource annotations at definition time.

import dagster as dg

from modelops.defs.assets.data import read_curated
from modelops.core.markdown import frame_table
from modelops.defs.metadata import counts_table
from modelops.defs.resources import DataLakes, customisation_of

def curated_no_leakage(context: dg.AssetCheckExecutionContext, lakes: DataLakes) -> dg.AssetCheckResult:
    """No example (by id or identical text) appears in more than one split."""
    from modelops.core.data.curate import leakage

    curated, _ = read_curated(lakes.of(customisation_of(context)))
    leaked = leakage(curated)
    return dg.AssetCheckResult(passed=leaked.empty, metadata={
        "leaked_rows": len(leaked), "sample": dg.MetadataValue.md(frame_table(leaked.head(10), index=False))})


def curated_min_examples_per_label(context: dg.AssetCheckExecutionContext, lakes: DataLakes) -> dg.AssetCheckResult:
    """Every label trained on has enough training and test examples to learn and to be evaluated (labels still short
    are held back by curation as pending)."""
    from modelops.core.data.curate import (
        MIN_TEST_EXAMPLES_PER_LABEL, MIN_TRAIN_EXAMPLES_PER_LABEL, short_labels, split_counts,
    )

    curated, _ = read_curated(lakes.of(customisation_of(context)))
    counts = split_counts(curated)
    short = short_labels(counts)
    return dg.AssetCheckResult(passed=short.empty, metadata={
        "labels_below_minimum": dg.MetadataValue.json(sorted(short.index)),
        "min_train": MIN_TRAIN_EXAMPLES_PER_LABEL, "min_test": MIN_TEST_EXAMPLES_PER_LABEL,
        "counts": dg.MetadataValue.md(frame_table(counts))})


def curated_no_pii_residue(context: dg.AssetCheckExecutionContext, lakes: DataLakes) -> dg.AssetCheckResult:
    """No e-mail, phone, card or IBAN pattern survives redaction."""
    from modelops.core.data.curate import pii_residue

    curated, _ = read_curated(lakes.of(customisation_of(context)))
    residue = pii_residue(curated["text"])
    return dg.AssetCheckResult(passed=sum(residue.values()) == 0, metadata={"residue": counts_table(residue, "pii_type")})


def curated_schema(context: dg.AssetCheckExecutionContext, lakes: DataLakes) -> dg.AssetCheckResult:
    """Columns id, text, label, split, source; no empty text or label; only known splits."""
    from modelops.core.data.curate import CURATED_COLUMNS, SPLITS

    curated, _ = read_curated(lakes.of(customisation_of(context)))
    problems = []
    if list(curated.columns) != CURATED_COLUMNS:
        problems.append(f"columns {list(curated.columns)} != {CURATED_COLUMNS}")
    else:
        if (curated["text"].str.len() == 0).any() or curated["text"].isna().any():
            problems.append("empty text")
        if curated["label"].isna().any() or (curated["label"].str.len() == 0).any():
            problems.append("empty label")
        if not set(curated["split"]) <= set(SPLITS):
            problems.append(f"unknown splits {sorted(set(curated['split']) - set(SPLITS))}")
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": dg.MetadataValue.json(problems)})


DATA_CHECKS = [curated_no_leakage, curated_min_examples_per_label, curated_no_pii_residue, curated_schema]
