"""Rebuild a registered adapter from what its training run recorded, and check the rebuild scores the same.

Inputs are found by their recorded hashes, never by "whatever is there now": the curated set by its content hash,
the base model by the sha256 of its weights, the training and validation sets (after incremental new+replay
selection) by their own content hashes, the hyper-parameters and seed from the run's `training/config.json`. Any
mismatch refuses with the input, the recorded hash and the one found.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from modelops.core.defaults import REPRODUCE_TOLERANCE


class ReproduceError(RuntimeError):
    """The version cannot be rebuilt as recorded; the message names the input that no longer matches."""


@dataclass(frozen=True)
class Reproduction:
    """Recorded vs rebuilt metrics of one model version."""

    version: str
    metrics: pd.DataFrame  # index: metric; columns: recorded, reproduced, difference
    prediction_agreement: float  # share of test texts both adapters label the same
    tolerance: float

    @property
    def matches(self) -> bool:
        return bool((self.metrics["difference"].abs() <= self.tolerance).all())

    def markdown(self) -> str:
        from modelops.core.markdown import frame_table

        verdict = "reproduced" if self.matches else "NOT reproduced"
        return (f"version {self.version}: **{verdict}** (tolerance {self.tolerance} macro-F1; test predictions agree "
                f"on {self.prediction_agreement:.1%})\n\n{frame_table(self.metrics.round(4))}")


def _recorded_inputs(registry: Any, version: str) -> tuple[dict[str, str], Any, dict[str, Any]]:
    """(version tags, training run, training config) of `version`."""
    from modelops.core.training.train import TRAINING_CONFIG_ARTIFACT

    info = registry.version_info(version)
    run = registry.get_run(info["run_id"])
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = registry.download_artifact(info["run_id"], TRAINING_CONFIG_ARTIFACT, Path(tmp))
        except Exception as exc:
            raise ReproduceError(f"Version {version} has no recorded {TRAINING_CONFIG_ARTIFACT} (trained before "
                                 "modelops recorded whole training configs), so it cannot be rebuilt exactly.") from exc
        config = json.loads(Path(path).read_text())
    return info["tags"], run, config


def _checked(name: str, recorded: str, found: str, fix: str) -> None:
    if recorded != found:
        raise ReproduceError(f"{name} no longer matches: recorded {recorded[:16]}, found {found[:16]}. {fix}")


def reproduce(registry: Any, version: str, curated_dir: Path, base_path: Path,
              tolerance: float = REPRODUCE_TOLERANCE) -> Reproduction:
    """Retrain `version` from its recorded inputs and compare it with the registered adapter on the test split."""
    from pydantic import ValidationError

    from modelops.core.data.curate import content_hash
    from modelops.core.serving.predictor import AdapterClassifier
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.training.train import (
        incremental_training_set,
        incremental_validation_set,
        seen_rows,
        train_classifier_adapter,
    )
    from modelops.core.training.training_config import TrainingConfig

    tags, run, config_values = _recorded_inputs(registry, version)
    base = describe_base_model(base_path)
    _checked("The base model", tags["base_sha256"], base.sha256,
             f"Point MODELOPS_BASE_MODEL_PATH at the base version {version} was trained on ({tags['base_name']}).")
    curated_path = Path(curated_dir) / f"{tags['data_content_hash']}.parquet"
    if not curated_path.is_file():
        raise ReproduceError(f"The curated set {tags['data_content_hash'][:16]} ({curated_path}) is gone; it cannot be "
                             "rebuilt from today's data. Restore it from backup to reproduce this version.")
    curated = pd.read_parquet(curated_path)
    _checked(f"The curated set {curated_path.name}", tags["data_content_hash"], content_hash(curated),
             "The file was modified after training; restore the original.")
    try:
        config = TrainingConfig.model_validate(config_values)
    except ValidationError as error:
        raise ReproduceError(f"Version {version}'s recorded training config does not fit this modelops's training "
                             f"policy (it was trained under another release): {error}") from error
    train, split = curated[curated["split"] == "train"], curated[curated["split"] == "validation"]
    validation, calibration = split, None
    validation_hashed = "validation_set_hash" in run.data.params  # earlier releases: none, and the whole split
    with tempfile.TemporaryDirectory() as tmp:
        init_adapter = None
        if config.mode == "incremental":
            warm = tags["warm_start_version"]
            init_adapter = registry.download_adapter(warm, Path(tmp) / f"warm-v{warm}")
            seen_hash = registry.version_info(warm)["tags"]["data_content_hash"]
            seen = seen_rows(pd.read_parquet(Path(curated_dir) / f"{seen_hash}.parquet", columns=["id", "label"]))
            severity = run.data.params.get("drift_severity")
            train = incremental_training_set(train, seen, config, severity)
            if validation_hashed:
                validation = incremental_validation_set(split, seen, config, severity)
                calibration = split
        _checked("The training set (after new+replay selection)", run.data.params["train_set_hash"],
                 content_hash(train), "The selection rules changed since this version was trained.")
        if validation_hashed:
            _checked("The validation set (after new+replay selection)", run.data.params["validation_set_hash"],
                     content_hash(validation), "The selection rules changed since this version was trained.")
        rebuilt = train_classifier_adapter(train, validation, base, config, Path(tmp) / "rebuilt", init_adapter,
                                           calibration=calibration)
        original = AdapterClassifier(base, registry.download_adapter(version, Path(tmp) / f"v{version}"))
        test = curated[curated["split"] == "test"]
        before = original.predict(test["text"].tolist())
        after = AdapterClassifier(base, rebuilt.adapter_dir).predict(test["text"].tolist())
    metrics = pd.DataFrame({
        "recorded": [run.data.metrics["best_val_macro_f1"], _macro_f1(test["label"], before.labels)],
        "reproduced": [rebuilt.best_score, _macro_f1(test["label"], after.labels)],
    }, index=pd.Index(["validation macro-F1 (best)", "test macro-F1"], name="metric"))
    metrics["difference"] = metrics["reproduced"] - metrics["recorded"]
    agreement = sum(a == b for a, b in zip(before.labels, after.labels, strict=True)) / max(len(test), 1)
    return Reproduction(version, metrics, agreement, tolerance)


def _macro_f1(truth: pd.Series, predicted: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth.tolist(), predicted, average="macro"))
