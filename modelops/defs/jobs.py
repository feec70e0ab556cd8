"""Jobs: materialise the data assets, and retrain (curated set -> adapter -> evaluation -> champion)."""

from __future__ import annotations

import dagster as dg

from modelops.defs.assets.data import curated_training_set, raw_examples
from modelops.defs.assets.training import TRAINING_TAG, champion, evaluation, lora_adapter

data_job = dg.define_asset_job(
    "data_job", selection=dg.AssetSelection.assets(raw_examples, curated_training_set),
    description="Ingest raw examples and rebuild the curated training set.",
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(curated_training_set, lora_adapter, evaluation, champion),
    tags={TRAINING_TAG: "true"},
    description="Curate, train a LoRA adapter (run config picks full or incremental), evaluate, promote through the gate.",
)

bootstrap_job = dg.define_asset_job(
    "bootstrap_job",
    selection=dg.AssetSelection.assets(raw_examples, curated_training_set, lora_adapter, evaluation, champion),
    tags={TRAINING_TAG: "true"},
    description="The whole asset graph from raw data to a first champion.",
)

migration_job = dg.define_asset_job(
    "migration_job",
    selection=dg.AssetSelection.assets(lora_adapter, evaluation, champion),
    tags={TRAINING_TAG: "true"},
    description="`modelops migrate --base`: train on a new base from the curated set, compare with the champion on its "
                "old base, promote through the gate.",
)
