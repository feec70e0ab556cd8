"""The drift reference of a champion: its predictions on held-out curated data, plus its training vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from modelops.core.atomic import write_parquet_atomic, write_text_atomic


def reference_paths(directory: Path, version: str) -> tuple[Path, Path]:
    return Path(directory) / f"v{version}.parquet", Path(directory) / f"v{version}.vocab.json"


def build_reference(classifier: object, held_out_texts: list[str], train_texts: list[str]) -> tuple[pd.DataFrame, frozenset[str]]:
    """Traffic-shaped frame (text, predicted_label, confidence, embedding) for texts the model never trained on."""
    from modelops.core.drift import build_vocabulary

    predictions = classifier.predict(held_out_texts)  # type: ignore[attr-defined]
    frame = pd.DataFrame({"text": held_out_texts, "predicted_label": predictions.labels,
                          "confidence": predictions.confidences.astype(float),
                          "embedding": list(predictions.embeddings)})
    return frame, build_vocabulary(train_texts)


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
