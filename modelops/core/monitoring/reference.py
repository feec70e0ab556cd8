"""The drift reference of a champion: its predictions on held-out curated data, its training vocabulary, and the
drift calibration made from them (thresholds for the policy's false-alarm rate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from modelops.core.atomic import write_parquet_atomic, write_text_atomic

if TYPE_CHECKING:
    from modelops.core.monitoring.drift_calibration import DriftCalibration
    from modelops.core.monitoring.drift_config import DriftConfig


def reference_paths(directory: Path, version: str) -> tuple[Path, Path]:
    return Path(directory) / f"v{version}.parquet", Path(directory) / f"v{version}.vocab.json"


def build_reference(classifier: object, held_out_texts: list[str], train_texts: list[str],
                    held_out_labels: list[str] | None = None) -> tuple[pd.DataFrame, frozenset[str]]:
    """Traffic-shaped frame (text, predicted_label, confidence, embedding) for texts the model never trained on,
    with their true `label` when given (it anchors the label-free accuracy estimate)."""
    from modelops.core.monitoring.drift import TRUE_LABEL_COLUMN, build_vocabulary
    from modelops.core.monitoring.drift_config import LABEL_COLUMN

    predictions = classifier.predict(held_out_texts)  # type: ignore[attr-defined]
    frame = pd.DataFrame({"text": held_out_texts, LABEL_COLUMN: predictions.labels,
                          "confidence": predictions.confidences.astype(float),
                          "embedding": list(predictions.embeddings)})
    if held_out_labels is not None:
        frame[TRUE_LABEL_COLUMN] = list(held_out_labels)
    return frame, build_vocabulary(train_texts)


def curated_reference(classifier: object, curated: pd.DataFrame) -> tuple[pd.DataFrame, frozenset[str]]:
    """The drift reference of a model trained on `curated`: its predictions on the held-out (validation and test)
    rows, with their labels, and the vocabulary of the training rows."""
    held_out = curated[curated["split"] != "train"]
    return build_reference(classifier, held_out["text"].tolist(), curated[curated["split"] == "train"]["text"].tolist(),
                           held_out["label"].tolist())


def save_reference(directory: Path, version: str, frame: pd.DataFrame, vocabulary: frozenset[str]) -> Path:
    data_path, vocab_path = reference_paths(directory, version)
    write_text_atomic(json.dumps(sorted(vocabulary)), vocab_path)
    return write_parquet_atomic(frame, data_path)


def load_reference(directory: Path, version: str) -> tuple[pd.DataFrame, frozenset[str]] | None:
    """The saved reference of `version`, or None when it has not been built."""
    data_path, vocab_path = reference_paths(directory, version)
    if not (data_path.is_file() and vocab_path.is_file()):
        return None
    return pd.read_parquet(data_path), frozenset(json.loads(vocab_path.read_text()))


def calibration_path(directory: Path, version: str) -> Path:
    return Path(directory) / f"v{version}.calibration.json"


def reference_calibration(directory: Path, version: str, reference: pd.DataFrame, vocabulary: frozenset[str],
                          config: DriftConfig) -> DriftCalibration:
    """The drift calibration stored with `version`'s reference; computed and stored first when there is none, or
    when the one stored was made under another drift policy."""
    from modelops.core.monitoring.drift_calibration import DriftCalibration, calibrate_drift, policy_fingerprint

    path = calibration_path(directory, version)
    if path.is_file():
        stored = DriftCalibration.from_json(path.read_text(encoding="utf-8"))
        if stored.policy_fingerprint == policy_fingerprint(config, len(reference)):
            return stored
    calibration = calibrate_drift(reference, vocabulary, config)
    write_text_atomic(calibration.to_json(), path)
    return calibration
