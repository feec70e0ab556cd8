"""Asset checks' bodies: guards on the curated set, the promotion gate on the evaluation, and the traffic_drift check on
production traffic (modelops.defs.customisation attaches them to each customisation)."""

# No `from __future__ import annotations` here: Dagster reads config/resource annotations at definition time.

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from modelops.core.markdown import frame_table
from modelops.defs.assets.data import read_curated
from modelops.defs.assets.generation import generation_policy
from modelops.defs.metadata import counts_table, drift_evaluation, window_metadata
from modelops.defs.resources import DataLake, DataLakes, MlflowRegistries, Policies, PolicyFiles, customisation_of

if TYPE_CHECKING:
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.core.registry.registry import ModelRegistry


def curated_no_leakage(context: dg.AssetCheckExecutionContext, lakes: DataLakes) -> dg.AssetCheckResult:
    """No example (by id or identical text; an instruction by its prompt) appears in more than one split."""
    from modelops.core.data.curate import leakage

    lake = lakes.of(customisation_of(context))
    curated, _ = read_curated(lake)
    leaked = leakage(curated, text_column="prompt" if lake.generative else "text")
    return dg.AssetCheckResult(passed=leaked.empty, metadata={
        "leaked_rows": len(leaked), "sample": dg.MetadataValue.md(frame_table(leaked.head(10), index=False))})


def curated_min_examples_per_label(context: dg.AssetCheckExecutionContext, lakes: DataLakes) -> dg.AssetCheckResult:
    """Every label trained on has enough training and test examples to learn and to be evaluated (labels still short
    are held back by curation as pending). An instruction set counts as one label: its task."""
    from modelops.core.data.curate import (
        MIN_TEST_EXAMPLES_PER_LABEL,
        MIN_TRAIN_EXAMPLES_PER_LABEL,
        short_labels,
        split_counts,
    )

    lake = lakes.of(customisation_of(context))
    curated, _ = read_curated(lake)
    counts = split_counts(curated.assign(label="instructions") if lake.generative else curated)
    short = short_labels(counts)
    return dg.AssetCheckResult(passed=short.empty, metadata={
        "labels_below_minimum": dg.MetadataValue.json(sorted(short.index)),
        "min_train": MIN_TRAIN_EXAMPLES_PER_LABEL, "min_test": MIN_TEST_EXAMPLES_PER_LABEL,
        "counts": dg.MetadataValue.md(frame_table(counts))})


def curated_no_pii_residue(context: dg.AssetCheckExecutionContext, lakes: DataLakes) -> dg.AssetCheckResult:
    """No e-mail, phone, card or IBAN pattern survives redaction (in prompts and responses of an instruction set)."""
    import pandas as pd

    from modelops.core.data.curate import pii_residue

    lake = lakes.of(customisation_of(context))
    curated, _ = read_curated(lake)
    residue = pii_residue(pd.concat([curated["prompt"], curated["response"]]) if lake.generative else curated["text"])
    return dg.AssetCheckResult(passed=sum(residue.values()) == 0,
                               metadata={"residue": counts_table(residue, "pii_type")})


def curated_schema(context: dg.AssetCheckExecutionContext, lakes: DataLakes) -> dg.AssetCheckResult:
    """Columns id, text, label, split, source (id, prompt, response, split, source for instructions); no empty text or
    label; only known splits."""
    from modelops.core.data.curate import CURATED_COLUMNS, SPLITS
    from modelops.core.data.instructions import INSTRUCTION_COLUMNS

    lake = lakes.of(customisation_of(context))
    curated, _ = read_curated(lake)
    columns, (text, label) = (INSTRUCTION_COLUMNS, ("prompt", "response")) if lake.generative \
        else (CURATED_COLUMNS, ("text", "label"))
    problems = []
    if list(curated.columns) != columns:
        problems.append(f"columns {list(curated.columns)} != {columns}")
    else:
        for column in (text, label):
            if curated[column].isna().any() or (curated[column].str.len() == 0).any():
                problems.append(f"empty {column}")
        if not set(curated["split"]) <= set(SPLITS):
            problems.append(f"unknown splits {sorted(set(curated['split']) - set(SPLITS))}")
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": dg.MetadataValue.json(problems)})


def promotion_gate(context: dg.AssetCheckExecutionContext, lakes: DataLakes) -> dg.AssetCheckResult:
    """The owner's promotion gate: the challenger may replace the champion only if every rule passes."""
    record = lakes.of(customisation_of(context)).read_record("evaluation")
    return dg.AssetCheckResult(passed=bool(record["passed"]), metadata={
        "challenger_version": record["challenger_version"], "reasons": dg.MetadataValue.json(record["reasons"]),
        "decision": dg.MetadataValue.md(record["gate_markdown"])})


DATA_CHECKS = [curated_no_leakage, curated_min_examples_per_label, curated_no_pii_residue, curated_schema]


class TrafficDriftConfig(dg.Config):
    """How much of the newest captured traffic an on-demand drift check reads."""

    rows: int = 0  # at least this many valid rows from the newest batches; 0: the policy's min_window_rows


def traffic_drift(context: dg.AssetCheckExecutionContext, config: TrafficDriftConfig, lakes: DataLakes,
                  mlflow: MlflowRegistries, policies: PolicyFiles) -> dg.AssetCheckResult:
    """Drift of captured traffic against the champion's reference (Evidently), as a non-blocking warning.

    The drift sensor reports one evaluation per window it checks, so this check's *Plots* chart the drift share,
    per-column drift scores and the label-free accuracy estimate over time. Executed on demand (UI, `modelops
    drift-check`), it checks the newest batches (at least `rows` valid rows, min_window_rows by default) without
    moving the sensor's cursor or quarantining anything.
    """
    from modelops.core.config_files import ConfigError, load_config
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.core.monitoring.drift_monitoring import check_window

    name = customisation_of(context)
    lake, store = lakes.of(name), mlflow.of(name)
    try:
        drift_config = load_config(Path(policies.of(name).drift_config), DriftConfig)
    except ConfigError as error:
        raise dg.Failure(str(error)) from error
    if config.rows and config.rows < drift_config.min_window_rows:
        raise dg.Failure(f"rows={config.rows} is below min_window_rows={drift_config.min_window_rows}: no decision on "
                         "so few rows")
    registry = store.registry()
    reference, window = _newest_window(lake, policies.of(name), registry, drift_config,
                                       config.rows or drift_config.min_window_rows)
    checked = check_window(registry, window, reference, drift_config)
    metadata = window_metadata(checked, window, registry.run_url(checked.report_run))
    return dg.AssetCheckResult(**drift_evaluation(checked, metadata))


def _newest_window(lake: DataLake, policies: Policies, registry: "ModelRegistry", drift_config: "DriftConfig",
                   rows: int) -> tuple:
    """The champion's reference and the newest captured traffic holding `rows` valid rows, or a Failure saying why
    there is none."""
    from modelops.core.monitoring.drift_monitoring import DriftMonitoringError, champion_reference, newest_window

    try:
        reference = champion_reference(registry, lake.settings.reference_dir, drift_config)
    except DriftMonitoringError as error:
        raise dg.Failure(str(error)) from error
    try:
        return reference, newest_window(lake.settings.production_dir, rows, lake.max_text_chars,
                                        reference.embedding_dim, generation_policy(lake, policies))
    except DriftMonitoringError as error:
        raise dg.Failure(f"{error} (min_window_rows is {drift_config.min_window_rows})") from error
