"""Calibrated drift on real text: CLINC150 (../shared/datasets/clinc150, 150 intents in 10 domains).

The champion here is a real model on the shipped MiniLM base, kept cheap for the suite: a nearest-centroid intent
classifier on mean-pooled base embeddings over 135 intents (9 domains; `work` never seen), with temperature-scaled
cosine scores as confidences and a fixed random projection of the embedding as the captured embedding, as the
server captures. Its reference is 1,000 validation rows of the 9 domains; traffic windows come from the test
split only (stable), from the unseen domain (new intents) and from the out-of-scope queries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.core.monitoring.drift import DriftResult, build_vocabulary, check_drift
from modelops.core.monitoring.drift_config import DriftConfig
from modelops.core.config_files import load_config
from modelops.core.monitoring.drift_calibration import DriftCalibration, calibrate_drift
from modelops.settings import PACKAGE_CONFIG_DIR

CLINC150 = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "clinc150"
NEW_DOMAIN = "work"
WINDOW = 200


def _read(name: str) -> pd.DataFrame:
    path = CLINC150 / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: the real-data drift tests read CLINC150 from ../shared/datasets/clinc150")
    return pd.read_csv(path)


class CentroidClassifier:
    """Nearest intent centroid of mean-pooled MiniLM embeddings; softmax of scaled cosine similarity."""

    def __init__(self, texts: list[str], labels: list[str]) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from modelops.settings import default_base_model_path

        torch.manual_seed(0)
        path = default_base_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.projection = np.random.default_rng(0).standard_normal((self.model.config.hidden_size, 32)) / np.sqrt(32)
        vectors = self.encode(texts)
        self.labels = sorted(set(labels))
        index = {label: i for i, label in enumerate(self.labels)}
        rows = np.array([index[label] for label in labels])
        self.centroids = np.stack([vectors[rows == i].mean(axis=0) for i in range(len(self.labels))])
        self.centroids /= np.linalg.norm(self.centroids, axis=1, keepdims=True)

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), 128):
                batch = self.tokenizer(texts[start:start + 128], padding=True, truncation=True, max_length=64,
                                       return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out)

    def traffic(self, texts: list[str]) -> pd.DataFrame:
        """What the server captures: text, predicted label, confidence, embedding."""
        vectors = self.encode(texts)
        logits = 20.0 * vectors @ self.centroids.T
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return pd.DataFrame({"text": texts, "predicted_label": [self.labels[i] for i in probabilities.argmax(1)],
                             "confidence": probabilities.max(axis=1).astype(np.float64),
                             "embedding": list((vectors @ self.projection).astype(np.float32))})


class Setup:
    def __init__(self) -> None:
        train, validation, test = _read("train.csv"), _read("validation.csv"), _read("test.csv")
        known = lambda frame: frame[frame["domain"] != NEW_DOMAIN]  # noqa: E731
        examples = known(train).groupby("label").head(10)
        self.classifier = CentroidClassifier(examples["text"].tolist(), examples["label"].tolist())
        self.vocabulary = build_vocabulary(examples["text"])
        self.config = load_config(PACKAGE_CONFIG_DIR / "drift.yaml", DriftConfig)
        held_out = known(validation).sample(1000, random_state=0)
        self.reference = self.classifier.traffic(held_out["text"].tolist())
        self.calibration: DriftCalibration = calibrate_drift(self.reference, self.vocabulary, self.config)
        stable = known(test).sample(800, random_state=1)
        self.stable = self.classifier.traffic(stable["text"].tolist()).assign(domain=stable["domain"].to_numpy())
        new = test[test["domain"] == NEW_DOMAIN].sample(150, random_state=2)
        self.new_domain = self.classifier.traffic(new["text"].tolist())
        out_of_scope = _read("out_of_scope.csv")
        self.out_of_scope = self.classifier.traffic(
            out_of_scope[out_of_scope["split"] == "test"].sample(150, random_state=3)["text"].tolist())

    def check(self, window: pd.DataFrame) -> DriftResult:
        return check_drift(self.reference, window, self.vocabulary, self.config, self.calibration)

    def mixed(self, other: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        n_other = int(share * WINDOW)
        parts = [self.stable.iloc[rng.choice(len(self.stable), WINDOW - n_other, replace=False)],
                 other.iloc[rng.choice(len(other), n_other, replace=False)]]
        return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def clinc() -> Setup:
    return Setup()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stable_real_windows_raise_no_drift(clinc: Setup, seed: int) -> None:
    window = clinc.stable.sample(WINDOW, random_state=seed)
    result = clinc.check(window)
    assert result.column_scores["predicted_label"] > 0.11  # 135 intents: a constant 0.11 would have alarmed
    assert (result.drift_detected, result.drifted_columns, result.severity) == (False, [], "none")


@pytest.mark.parametrize("shift", ["new_domain", "out_of_scope"])
def test_new_intents_and_out_of_scope_surges_are_detected(clinc: Setup, shift: str) -> None:
    result = clinc.check(clinc.mixed(getattr(clinc, shift), share=0.3, seed=4))
    assert result.drift_detected and result.retrain_recommended
    assert result.accuracy_drop_significant  # the label-free estimate sees the unfamiliar queries


def test_domain_mix_shift_is_detected(clinc: Setup) -> None:
    domains = sorted(clinc.stable["domain"].unique())
    favoured = clinc.stable[clinc.stable["domain"].isin(domains[:2])]
    rest = clinc.stable[~clinc.stable["domain"].isin(domains[:2])]
    window = pd.concat([favoured.sample(140, random_state=5), rest.sample(60, random_state=5)], ignore_index=True)
    result = clinc.check(window)
    assert "predicted_label" in result.drifted_columns and result.drift_detected


def test_one_unseen_intent_is_reported_as_one_new_topic(clinc: Setup) -> None:
    """30 requests of one intent from the unseen domain in a 300-row window: one candidate, every example from it."""
    test = _read("test.csv")
    intent = sorted(test.loc[test["domain"] == NEW_DOMAIN, "label"].unique())[2]
    planted = clinc.classifier.traffic(("UNSEEN " + test.loc[test["label"] == intent, "text"]).tolist())
    window = pd.concat([clinc.stable.sample(270, random_state=1).drop(columns=["domain"]), planted],
                       ignore_index=True)
    result = clinc.check(window)
    (topic,) = result.new_topics
    assert topic.size >= 24 and all(text.startswith("UNSEEN") for text in topic.examples)
    assert result.to_metadata()["new_topic_candidates"] == 1
    for seed in (0, 1):
        assert clinc.check(clinc.stable.sample(WINDOW, random_state=seed)).new_topics == []
