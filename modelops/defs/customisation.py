"""One customisation's Dagster objects, generated from its name: assets under its key prefix and in its own group,
their checks, its jobs, its drift sensor and weekly schedule. `modelops.definitions` builds one set per customisation.

The bodies (defs/assets, defs/checks.py) are decorated here as they are: each finds its customisation from its asset
key and takes its resources by parameter name. Jobs, the sensor and the schedule come from defs/jobs.py,
defs/sensors.py and defs/schedules.py.
"""

from collections.abc import Callable
from dataclasses import dataclass
from inspect import cleandoc
from typing import Any

import dagster as dg

from modelops.core.defaults import DRIFT_SENSOR_INTERVAL_SECONDS
from modelops.core.tags import DagsterTag
from modelops.defs import checks, sensors
from modelops.defs.assets import data, labelling, traffic, training
from modelops.defs.assets.training import TRAINING_POOL
from modelops.defs.jobs import AssetJob, customisation_jobs
from modelops.defs.resources import CustomisationKeys
from modelops.defs.schedules import weekly_full_retrain


@dataclass(frozen=True)
class CustomisationDefs:
    """Everything Dagster shows for one customisation."""

    keys: CustomisationKeys
    raw_examples: dg.AssetsDefinition
    production_traffic: dg.AssetsDefinition
    labelling_queue: dg.AssetsDefinition
    curated_training_set: dg.AssetsDefinition
    lora_adapter: dg.AssetsDefinition
    evaluation: dg.AssetsDefinition
    champion: dg.AssetsDefinition
    data_checks: list[dg.AssetChecksDefinition]
    promotion_gate: dg.AssetChecksDefinition
    data_job: AssetJob
    retrain_job: AssetJob
    bootstrap_job: AssetJob
    migration_job: AssetJob
    drift_check_job: AssetJob
    traffic_drift: dg.AssetChecksDefinition
    drift_sensor: dg.SensorDefinition
    weekly_retrain: dg.ScheduleDefinition

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [self.raw_examples, self.production_traffic, self.labelling_queue, self.curated_training_set,
                self.lora_adapter, self.evaluation, self.champion]

    @property
    def training_assets(self) -> list:
        """Adapter -> evaluation (+ gate) -> champion: what a retraining run materialises after curation."""
        return [self.lora_adapter, self.evaluation, self.promotion_gate, self.champion]

    @property
    def checks(self) -> list[dg.AssetChecksDefinition]:
        return [*self.data_checks, self.promotion_gate, self.traffic_drift]

    @property
    def jobs(self) -> list[AssetJob]:
        return [self.data_job, self.retrain_job, self.bootstrap_job, self.migration_job, self.drift_check_job]


def customisation_defs(name: str, sensor_interval_seconds: int = DRIFT_SENSOR_INTERVAL_SECONDS) -> CustomisationDefs:
    """Assets, checks, jobs, sensor and schedule of the customisation `name` (its resources come from settings)."""
    keys = CustomisationKeys(name)

    def asset(body: Callable, kinds: set[str], stage: str, deps: tuple[str, ...] = (), tags: dict | None = None,
              **kwargs: Any) -> dg.AssetsDefinition:
        return dg.asset(key=keys.asset(body.__name__), group_name=name, kinds=kinds,
                        deps=[keys.asset(d) for d in deps], description=cleandoc(body.__doc__),
                        tags={DagsterTag.STAGE: stage, **(tags or {})}, **kwargs)(body)

    def check(body: Callable, on: str, **kwargs: Any) -> dg.AssetChecksDefinition:
        return dg.asset_check(asset=keys.asset(on), name=body.__name__, description=cleandoc(body.__doc__),
                              **{"blocking": True, **kwargs})(body)

    batches = dg.DynamicPartitionsDefinition(name=keys.traffic_batches)
    assets = {a.key.path[-1]: a for a in (
        asset(data.raw_examples, {"pandas", "parquet"}, "data"),
        asset(traffic.production_traffic, {"parquet"}, "monitoring", partitions_def=batches),
        asset(labelling.labelling_queue, {"csv"}, "monitoring", ("production_traffic",), partitions_def=batches),
        asset(data.curated_training_set, {"pandas", "parquet"}, "data", ("raw_examples", "production_traffic")),
        asset(training.lora_adapter, {"pytorch", "mlflow"}, "training", ("curated_training_set",),
              tags={DagsterTag.TRAINING: "true"}, pool=TRAINING_POOL),
        asset(training.evaluation, {"pytorch", "mlflow"}, "evaluation", ("lora_adapter",)),
        asset(training.champion, {"mlflow"}, "promotion", ("evaluation",)))}
    traffic_drift = check(checks.traffic_drift, "production_traffic", blocking=False)
    jobs = customisation_jobs(keys, assets, traffic_drift)
    return CustomisationDefs(
        keys=keys, **assets, **jobs,
        data_checks=[check(body, "curated_training_set") for body in checks.DATA_CHECKS],
        promotion_gate=check(checks.promotion_gate, "evaluation"), traffic_drift=traffic_drift,
        drift_sensor=sensors.drift_sensor(keys, jobs["retrain_job"], sensor_interval_seconds),
        weekly_retrain=weekly_full_retrain(keys, jobs["retrain_job"]),
    )
