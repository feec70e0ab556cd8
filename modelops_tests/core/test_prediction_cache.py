"""A version's stored predictions: the same as predicting, computed once per text, dropped for other versions."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from modelops.core.serving.prediction_cache import PredictionCache, adapter_fingerprint, prune_prediction_caches
from modelops.core.serving.predictor import AdapterClassifier, Predictions

TEXTS = ["my invoice is wrong", "refund my order please", "where is my parcel", "my invoice is wrong"]


@pytest.fixture(scope="module")
def classifier(base_info, untrained_adapter_dir: Path) -> AdapterClassifier:
    return AdapterClassifier(base_info, untrained_adapter_dir)


def test_cached_predictions_equal_fresh_ones_and_each_text_is_predicted_once(classifier, tmp_path: Path):
    asked: list[list[str]] = []

    def predict(texts: list[str]) -> Predictions:
        asked.append(texts)
        return classifier._predict(texts, 64)

    cache = PredictionCache(tmp_path / "v3.npz", classifier.label_names, "adapter-a")
    fresh = classifier._predict(TEXTS, 64)
    first = cache.predict(predict, TEXTS)
    assert asked == [TEXTS[:3]]  # the repeated text once
    restarted = PredictionCache(tmp_path / "v3.npz", classifier.label_names, "adapter-a")  # reads what was stored
    again = restarted.predict(predict, [*TEXTS, "cancel my subscription"])
    assert asked[1:] == [["cancel my subscription"]]  # only the new text, also after a restart (read from disk)
    for found in (first, Predictions(again.labels[:4], again.confidences[:4], again.probabilities[:4],
                                     again.embeddings[:4])):
        assert found.labels == fresh.labels
        np.testing.assert_allclose(found.probabilities, fresh.probabilities, rtol=0, atol=1e-6)
        np.testing.assert_allclose(found.confidences, fresh.confidences, rtol=0, atol=1e-6)
        np.testing.assert_allclose(found.embeddings, fresh.embeddings, rtol=0, atol=1e-6)
    assert len(cache.predict(predict, []).labels) == 0 and len(asked) == 2


def test_classifier_uses_its_cache_and_ignores_one_it_cannot_trust(classifier, untrained_adapter_dir: Path,
                                                                    tmp_path: Path):
    path = tmp_path / "v1.npz"
    classifier.prediction_cache = PredictionCache(path, classifier.label_names, "adapter-a")
    try:
        first = classifier.predict(TEXTS)
        stored = path.stat().st_mtime_ns
        assert classifier.predict(TEXTS).labels == first.labels and path.stat().st_mtime_ns == stored  # nothing new
    finally:
        classifier.prediction_cache = None

    def counting(calls: list[list[str]]):
        def predict(texts: list[str]) -> Predictions:
            calls.append(texts)
            return classifier._predict(texts, 64)
        return predict

    # another adapter under the same version number (a registry recreated, say): its predictions are not these
    calls: list[list[str]] = []
    PredictionCache(path, classifier.label_names, "adapter-b").predict(counting(calls), TEXTS[:1])
    assert calls == [TEXTS[:1]]
    path.write_bytes(b"not an npz")  # a damaged file is ignored (and rewritten), not an evaluation that fails
    calls.clear()
    assert PredictionCache(path, classifier.label_names, "adapter-b").predict(counting(calls), TEXTS[:1]).labels == \
        first.labels[:1]
    assert calls == [TEXTS[:1]]
    # the fingerprint follows the adapter's files and the length limit
    copy = tmp_path / "adapter"
    shutil.copytree(untrained_adapter_dir, copy)
    assert adapter_fingerprint(copy, 128) == adapter_fingerprint(untrained_adapter_dir, 128)
    assert adapter_fingerprint(copy, 64) != adapter_fingerprint(copy, 128)
    (copy / "labels.json").write_text('["a", "b", "c"]')
    assert adapter_fingerprint(copy, 128) != adapter_fingerprint(untrained_adapter_dir, 128)


def test_prune_keeps_only_the_versions_asked_for(tmp_path: Path):
    for version in ("1", "2", "10"):
        (tmp_path / f"v{version}.npz").write_bytes(b"")
    removed = prune_prediction_caches(tmp_path, {"2", "10"})
    assert [p.name for p in removed] == ["v1.npz"] and sorted(p.name for p in tmp_path.iterdir()) == ["v10.npz",
                                                                                                         "v2.npz"]
