"""One customisation's Dagster objects, generated from its name: assets under its key prefix and in its own group,
their checks, its jobs, its drift sensor and weekly schedule. `modelops.definitions` builds one set per customisation.

The bodies live in modelops.defs.assets / checks / sensors and take their resources as arguments; the wrappers here
only give them this customisation's resources (`<name>_lake`, `<name>_mlflow`, `<name>_policies`).
"""

# No `from __future__ import annotations` here: Dagster reads config annotations at definition time.

from collections.abc import Callable
from inspect import cleandoc
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from modelops.core.tags import DagsterTag
from modelops.defs import checks, sensors
from modelops.defs.assets import data, labelling, traffic, training
from modelops.defs.assets.data import RawExamplesConfig
from modelops.defs.assets.training import TRAINING_POOL, LoraAdapterConfig
from modelops.defs.resources import CustomisationKeys
from modelops.defs.sensors import TrafficDriftConfig

SHARED = {"base_model", "training"}


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
    data_job: UnresolvedAssetJobDefinition
    retrain_job: UnresolvedAssetJobDefinition
    bootstrap_job: UnresolvedAssetJobDefinition
    migration_job: UnresolvedAssetJobDefinition
    drift_check_job: UnresolvedAssetJobDefinition
    traffic_drift: dg.AssetChecksDefinition
    drift_sensor: dg.SensorDefinition
    weekly_retrain: dg.ScheduleDefinition

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [self.raw_examples, self.production_traffic, self.labelling_queue, self.curated_training_set, self.lora_adapter,
                self.evaluation, self.champion]

    @property
    def training_assets(self) -> list:
        """Adapter -> evaluation (+ gate) -> champion: what a retraining run materialises after curation."""
        return [self.lora_adapter, self.evaluation, self.promotion_gate, self.champion]

    @property
    def checks(self) -> list[dg.AssetChecksDefinition]:
        return [*self.data_checks, self.promotion_gate, self.traffic_drift]

    @property
    def jobs(self) -> list[UnresolvedAssetJobDefinition]:
        return [self.data_job, self.retrain_job, self.bootstrap_job, self.migration_job, self.drift_check_job]


def _check(keys: CustomisationKeys, body: Callable[..., dg.AssetCheckResult], asset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=keys.asset(asset), name=body.__name__, blocking=True, description=cleandoc(body.__doc__),
                    required_resource_keys={keys.lake})
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return body(getattr(context.resources, keys.lake))

    return check


def customisation_defs(name: str) -> CustomisationDefs:
    """Assets, checks, jobs, sensor and schedule of the customisation `name` (its resources come from settings)."""
    keys = CustomisationKeys(name)
    own = {keys.lake, keys.mlflow, keys.policies}

    def asset(asset_name: str, body: Callable, kinds: set[str], stage: str, needs: set[str], deps: list[str] = (),
              **kwargs) -> Callable:
        return dg.asset(key=keys.asset(asset_name), group_name=name, kinds=kinds, deps=[keys.asset(d) for d in deps],
                        description=cleandoc(body.__doc__), required_resource_keys=needs, tags={DagsterTag.STAGE: stage,
                                                                                       **kwargs.pop("tags", {})},
                        **kwargs)

    @asset("raw_examples", data.raw_examples, {"pandas", "parquet"}, "data", {keys.lake})
    def raw_examples(context: dg.AssetExecutionContext, config: RawExamplesConfig) -> dg.MaterializeResult:
        return data.raw_examples(context, config, getattr(context.resources, keys.lake))

    batches = dg.DynamicPartitionsDefinition(name=keys.traffic_batches)

    @asset("production_traffic", traffic.production_traffic, {"parquet"}, "monitoring", {keys.lake},
           partitions_def=batches)
    def production_traffic(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return traffic.production_traffic(context, getattr(context.resources, keys.lake))

    @asset("labelling_queue", labelling.labelling_queue, {"csv"}, "monitoring", {keys.lake, keys.policies},
           deps=["production_traffic"], partitions_def=batches)
    def labelling_queue(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return labelling.labelling_queue(context, getattr(context.resources, keys.lake),
                                         getattr(context.resources, keys.policies))

    @asset("curated_training_set", data.curated_training_set, {"pandas", "parquet"}, "data", {keys.lake},
           deps=["raw_examples", "production_traffic"])
    def curated_training_set(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return data.curated_training_set(context, getattr(context.resources, keys.lake))

    @asset("lora_adapter", training.lora_adapter, {"pytorch", "mlflow"}, "training", own | SHARED,
           deps=["curated_training_set"], tags={DagsterTag.TRAINING: "true"}, pool=TRAINING_POOL)
    def lora_adapter(context: dg.AssetExecutionContext, config: LoraAdapterConfig) -> dg.MaterializeResult:
        lake, mlflow, policies = keys.resources(context)
        return training.lora_adapter(context, config, lake, context.resources.base_model, mlflow, policies,
                                     context.resources.training)

    @asset("evaluation", training.evaluation, {"pytorch", "mlflow"}, "evaluation", own | {"base_model"},
           deps=["lora_adapter"])
    def evaluation(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        lake, mlflow, policies = keys.resources(context)
        return training.evaluation(context, lake, context.resources.base_model, mlflow, policies)

    @asset("champion", training.champion, {"mlflow"}, "promotion", own | {"base_model"}, deps=["evaluation"])
    def champion(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        lake, mlflow, policies = keys.resources(context)
        return training.champion(context, lake, context.resources.base_model, mlflow, policies)

    def job(job_name: str, assets: list, description: str, training_run: bool = True) -> UnresolvedAssetJobDefinition:
        return dg.define_asset_job(keys.job(job_name), selection=dg.AssetSelection.assets(*assets),
                                   description=description,
                                   tags={DagsterTag.TRAINING: "true"} if training_run else None)

    retrain_job = job("retrain_job", [curated_training_set, lora_adapter, evaluation, champion],
                      "Curate, train a LoRA adapter (run config picks full or incremental), evaluate, promote through "
                      "the gate.")

    @dg.asset_check(asset=production_traffic, name="traffic_drift", blocking=False, required_resource_keys=own,
                    description=cleandoc(sensors.traffic_drift.__doc__))
    def traffic_drift(context: dg.AssetCheckExecutionContext, config: TrafficDriftConfig) -> dg.AssetCheckResult:
        return sensors.traffic_drift(*keys.resources(context), rows=config.rows)

    @dg.sensor(name=keys.job("drift_sensor"), job=retrain_job, minimum_interval_seconds=15,
               default_status=dg.DefaultSensorStatus.RUNNING, required_resource_keys=own,
               description=cleandoc(sensors.drift_sensor.__doc__))
    def drift(context: dg.SensorEvaluationContext, **_resources: object) -> dg.SensorResult | dg.SkipReason:
        # Called directly (`sensor(context)`, as tests do), Dagster also passes the required resources as keywords.
        return sensors.drift_sensor(context, keys, *keys.resources(context))

    return CustomisationDefs(
        keys=keys, raw_examples=raw_examples, production_traffic=production_traffic, labelling_queue=labelling_queue,
        curated_training_set=curated_training_set, lora_adapter=lora_adapter, evaluation=evaluation, champion=champion,
        data_checks=[_check(keys, body, "curated_training_set") for body in checks.DATA_CHECKS],
        promotion_gate=_check(keys, training.promotion_gate, "evaluation"),
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
        drift_sensor=drift,
        weekly_retrain=dg.ScheduleDefinition(
            name=keys.job("weekly_full_retrain"), job=retrain_job, cron_schedule="0 3 * * 0",
            run_config=keys.run_config(lora_adapter={"mode": "full"}), tags={DagsterTag.TRIGGER: "schedule"},
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Fallback: a full retrain every Sunday 03:00, drift or not."),
    )
