"""One customisation's Dagster objects, generated from its name: assets under its key prefix and in its own group,
their checks, its jobs, its drift sensor and weekly schedule. `modelops.definitions` builds one set per customisation.

The bodies (modelops.defs.assets / checks / sensors) are decorated here as they are: each finds its customisation
from its asset key and takes its resources by parameter name.
"""

from collections.abc import Callable
from dataclasses import dataclass
from inspect import cleandoc
from typing import Any

import dagster as dg

from modelops.core.tags import DagsterTag
from modelops.defs import checks, sensors
from modelops.defs.assets import data, labelling, traffic, training
from modelops.defs.assets.training import TRAINING_POOL
from modelops.defs.resources import CustomisationKeys

AssetJob = Any  # what dg.define_asset_job returns (Dagster does not export its type)


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


def customisation_defs(name: str) -> CustomisationDefs:
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

    def job(job_name: str, assets: list, description: str, training_run: bool = True) -> AssetJob:
        return dg.define_asset_job(keys.job(job_name), selection=dg.AssetSelection.assets(*assets),
                                   description=description,
                                   tags={DagsterTag.TRAINING: "true"} if training_run else None)

    batches = dg.DynamicPartitionsDefinition(name=keys.traffic_batches)
    raw_examples = asset(data.raw_examples, {"pandas", "parquet"}, "data")
    production_traffic = asset(traffic.production_traffic, {"parquet"}, "monitoring", partitions_def=batches)
    labelling_queue = asset(labelling.labelling_queue, {"csv"}, "monitoring", ("production_traffic",),
                            partitions_def=batches)
    curated_training_set = asset(data.curated_training_set, {"pandas", "parquet"}, "data",
                                 ("raw_examples", "production_traffic"))
    lora_adapter = asset(training.lora_adapter, {"pytorch", "mlflow"}, "training", ("curated_training_set",),
                         tags={DagsterTag.TRAINING: "true"}, pool=TRAINING_POOL)
    evaluation = asset(training.evaluation, {"pytorch", "mlflow"}, "evaluation", ("lora_adapter",))
    champion = asset(training.champion, {"mlflow"}, "promotion", ("evaluation",))
    traffic_drift = check(sensors.traffic_drift, "production_traffic", blocking=False)
    retrain_job = job("retrain_job", [curated_training_set, lora_adapter, evaluation, champion],
                      "Curate, train a LoRA adapter (run config picks full or incremental), evaluate, promote through "
                      "the gate.")
    return CustomisationDefs(
        keys=keys, raw_examples=raw_examples, production_traffic=production_traffic, labelling_queue=labelling_queue,
        curated_training_set=curated_training_set, lora_adapter=lora_adapter, evaluation=evaluation, champion=champion,
        data_checks=[check(body, "curated_training_set") for body in checks.DATA_CHECKS],
        promotion_gate=check(training.promotion_gate, "evaluation"),
        data_job=job("data_job", [raw_examples, curated_training_set],
                     "Ingest raw examples and rebuild the curated training set.", training_run=False),
        retrain_job=retrain_job,
        bootstrap_job=job("bootstrap_job", [raw_examples, curated_training_set, lora_adapter, evaluation, champion],
                          "The whole asset graph from raw data to a first champion."),
        migration_job=job("migration_job", [lora_adapter, evaluation, champion],
                          "`modelops migrate --base`: train on a new base from the curated set, compare with the "
                          "champion on its old base, promote through the gate."),
        drift_check_job=dg.define_asset_job(
            keys.job("drift_check_job"), selection=dg.AssetSelection.checks(traffic_drift),
            description="`modelops drift-check`: the traffic_drift check on the newest captured traffic."),
        traffic_drift=traffic_drift,
        drift_sensor=sensors.drift_sensor(keys, retrain_job),
        weekly_retrain=dg.ScheduleDefinition(
            name=keys.job("weekly_full_retrain"), job=retrain_job, cron_schedule="0 3 * * 0",
            run_config=keys.run_config(lora_adapter={"mode": "full"}), tags={DagsterTag.TRIGGER: "schedule"},
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Fallback: a full retrain every Sunday 03:00, drift or not."),
    )
