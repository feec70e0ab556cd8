"""The Dagster code location: `Definitions` built from modelops settings (what workspace.yaml loads)."""

from __future__ import annotations

import dagster as dg

from modelops.defs.assets.data import curated_training_set, raw_examples
from modelops.defs.assets.traffic import production_traffic
from modelops.defs.assets.training import champion, evaluation, lora_adapter, promotion_gate
from modelops.defs.checks import DATA_CHECKS
from modelops.defs.jobs import bootstrap_job, data_job, migration_job, retrain_job
from modelops.defs.resources import resources_from_settings
from modelops.defs.sensors import drift_sensor, weekly_retrain_schedule
from modelops.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """All assets, checks, jobs, sensors and resources for one modelops installation."""
    return dg.Definitions(
        assets=[raw_examples, production_traffic, curated_training_set, lora_adapter, evaluation, champion],
        asset_checks=[*DATA_CHECKS, promotion_gate],
        jobs=[data_job, retrain_job, bootstrap_job, migration_job],
        sensors=[drift_sensor],
        schedules=[weekly_retrain_schedule],
        resources=resources_from_settings(settings),
        # The graph is a chain and training already runs in its own process (Dagster Pipes): one run-worker process
        # per run, instead of one per step that re-imports torch, saves ~5-15 s per step.
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_settings())
