"""What a registered version predicted, kept by text: a version's adapter never changes, so its calibrated
probabilities and embedding for a text hold for good. Each version is evaluated as a challenger and then, as
champion, against every later challenger, mostly on the same test and validation rows; this computes them once."""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from modelops.core.atomic import write_atomic
from modelops.core.serving.predictor import EMBEDDING_DIM, Predictions

log = logging.getLogger(__name__)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def adapter_fingerprint(adapter_dir: Path, max_length: int) -> str:
    """What a classifier's predictions depend on besides the text: every file of its adapter folder (weights, labels,
    temperature, the base's sha256 in the manifest) and its tokenizer's length limit."""
    digest = hashlib.sha256(str(max_length).encode())
    for path in sorted(p for p in Path(adapter_dir).iterdir() if p.is_file()):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class PredictionCache:
    """One version's stored predictions (`path`, an .npz of text keys, probabilities and embeddings), valid for the
    classifier with `fingerprint` (`adapter_fingerprint`): a file written for anything else (a registry recreated
    under the same version numbers, another length limit) or that cannot be read is ignored and rewritten."""

    def __init__(self, path: Path, label_names: list[str], fingerprint: str) -> None:
        self.path, self.label_names, self.fingerprint = Path(path), list(label_names), fingerprint
        self._rows: dict[str, tuple[np.ndarray, np.ndarray]] | None = None  # read from `path` at the first predict

    def _load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        try:
            with np.load(self.path) as stored:
                if str(stored["fingerprint"]) != self.fingerprint:
                    return {}
                return {str(key): (p, e) for key, p, e in zip(stored["keys"], stored["probabilities"],
                                                               stored["embeddings"], strict=True)}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            log.warning("ignoring unreadable stored predictions %s: %s", self.path, error)
            return {}

    def _save(self, rows: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(list(rows)), fingerprint=np.array(self.fingerprint),
                 probabilities=np.stack([p for p, _ in rows.values()]),
                 embeddings=np.stack([e for _, e in rows.values()]))
        write_atomic(self.path, lambda tmp: tmp.write_bytes(buffer.getvalue()))

    def predict(self, predict: Callable[[list[str]], Predictions], texts: list[str]) -> Predictions:
        """`predict(texts)` for the texts not stored yet (each once), the stored rows for the others."""
        if self._rows is None:
            self._rows = self._load()
        rows = self._rows
        keys = [text_key(text) for text in texts]
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in rows}
        if missing:
            found = predict(list(missing.values()))
            rows.update(zip(missing, zip(found.probabilities, found.embeddings, strict=True), strict=True))
            self._save(rows)
        if not keys:
            return Predictions.from_probabilities(np.zeros((0, len(self.label_names)), np.float32),
                                                  np.zeros((0, EMBEDDING_DIM), np.float32), self.label_names)
        return Predictions.from_probabilities(np.stack([rows[key][0] for key in keys]),
                                              np.stack([rows[key][1] for key in keys]), self.label_names)


def prune_prediction_caches(directory: Path, keep: set[str]) -> list[Path]:
    """Delete the stored predictions of versions not in `keep` (only the champion and challenger are evaluated
    again); returns the files removed."""
    removed = [path for path in Path(directory).glob("v*.npz") if path.stem[1:] not in keep]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
