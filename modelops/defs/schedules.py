"""One customisation's schedule: a weekly full retrain, the fallback when no drift triggers one."""

import dagster as dg

from modelops.core.tags import DagsterTag
from modelops.defs.resources import CustomisationKeys


def weekly_full_retrain(keys: CustomisationKeys, retrain_job: object) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=keys.job("weekly_full_retrain"), job=retrain_job, cron_schedule="0 3 * * 0",
        run_config=keys.run_config(lora_adapter={"mode": "full"}), tags={DagsterTag.TRIGGER: "schedule"},
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Fallback: a full retrain every Sunday 03:00, drift or not.")
