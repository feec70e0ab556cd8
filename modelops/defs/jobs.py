"""One customisation's jobs: data, retraining (what the drift sensor and the weekly schedule run), bootstrap,
migration to a new base, and the on-demand drift check."""

from typing import Any

import dagster as dg

from modelops.core.tags import DagsterTag
from modelops.defs.resources import CustomisationKeys

AssetJob = Any  # what dg.define_asset_job returns (Dagster does not export its type)


def customisation_jobs(keys: CustomisationKeys, assets: dict[str, dg.AssetsDefinition],
                       traffic_drift: dg.AssetChecksDefinition) -> dict[str, AssetJob]:
    """The jobs over a customisation's `assets` (by name), by job name (data_job, retrain_job, bootstrap_job,
    migration_job, drift_check_job); training jobs are tagged for the one-at-a-time queue."""

    def job(name: str, selected: list[str], description: str, training_run: bool = True) -> AssetJob:
        return dg.define_asset_job(keys.job(name), selection=dg.AssetSelection.assets(*(assets[a] for a in selected)),
                                   description=description,
                                   tags={DagsterTag.TRAINING: "true"} if training_run else None)

    return {
        "data_job": job("data_job", ["raw_examples", "curated_training_set"],
                        "Ingest raw examples and rebuild the curated training set.", training_run=False),
        "retrain_job": job("retrain_job", ["curated_training_set", "lora_adapter", "evaluation", "champion"],
                           "Curate, train a LoRA adapter (run config picks full or incremental), evaluate, promote "
                           "through the gate."),
        "bootstrap_job": job("bootstrap_job", ["raw_examples", "curated_training_set", "lora_adapter", "evaluation",
                                               "champion"], "The whole asset graph from raw data to a first champion."),
        "migration_job": job("migration_job", ["lora_adapter", "evaluation", "champion"],
                             "`modelops migrate --base`: train on a new base from the curated set, compare with the "
                             "champion on its old base, promote through the gate."),
        "drift_check_job": dg.define_asset_job(
            keys.job("drift_check_job"), selection=dg.AssetSelection.checks(traffic_drift),
            description="`modelops drift-check`: the traffic_drift check on the newest captured traffic."),
    }
