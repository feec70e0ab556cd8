"""The Dagster code location: `Definitions` built from modelops settings (what workspace.yaml loads)."""

from __future__ import annotations

import dagster as dg

from modelops.defs.customisation import customisation_defs
from modelops.defs.resources import resources_from_settings
from modelops.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every customisation's assets, checks, jobs, sensor and schedule, and the resources they run with."""
    every = [customisation_defs(c.customisation, settings.drift_sensor_interval_seconds)
             for c in settings.customisation_settings()]
    return dg.Definitions(
        assets=[a for c in every for a in c.assets],
        asset_checks=[check for c in every for check in c.checks],
        jobs=[job for c in every for job in c.jobs],
        sensors=[c.drift_sensor for c in every],
        schedules=[c.weekly_retrain for c in every],
        resources=resources_from_settings(settings),
        # The graph is a chain and training already runs in its own process (Dagster Pipes): one run-worker process
        # per run, instead of one per step that re-imports torch, saves ~5-15 s per step.
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_settings())
