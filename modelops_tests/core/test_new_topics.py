"""Candidate new intents: a planted topic is found as one pure group, stable traffic yields none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops.core.monitoring.new_topics import discover_new_topics, topics_markdown
from modelops_tests.helpers import DIM, traffic


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return traffic(3000, seed=1)


def planted_topic(rows: int, seed: int) -> pd.DataFrame:
    """Requests around an embedding centre no reference label has, answered with low confidence."""
    rng = np.random.default_rng(seed)
    frame = traffic(rows, seed=seed)
    frame["embedding"] = list((rng.normal(size=DIM) * 3 + rng.normal(size=(rows, DIM))).astype(np.float32))
    frame["confidence"] = rng.beta(2, 5, size=rows)
    frame["text"] = "PLANTED " + frame["text"]
    return frame


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_stable_traffic_has_no_candidate(reference: pd.DataFrame, seed: int) -> None:
    assert discover_new_topics(reference, traffic(400, seed=seed)) == []


def test_a_planted_topic_at_ten_percent_is_one_pure_candidate(reference: pd.DataFrame) -> None:
    window = pd.concat([traffic(360, seed=5), planted_topic(40, seed=99)], ignore_index=True)
    (candidate,) = discover_new_topics(reference, window)
    planted = window["text"].str.startswith("PLANTED")
    assert candidate.size >= 32 and candidate.share == pytest.approx(candidate.size / 400)
    assert all(text.startswith("PLANTED") for text in candidate.examples) and len(candidate.examples) == 5
    assert sum(candidate.predicted_labels.values()) == candidate.size == len(candidate.members)
    purity = planted.iloc[[int(m) for m in candidate.members]].mean()
    assert purity >= 0.8
    table = topics_markdown([candidate])
    assert f"{candidate.share:.1%}" in table and "PLANTED" in table


def test_without_embeddings_nothing_is_clustered(reference: pd.DataFrame) -> None:
    window = pd.concat([traffic(360, seed=5), planted_topic(40, seed=99)], ignore_index=True)
    assert discover_new_topics(reference.drop(columns=["embedding"]), window) == []
    assert "No group" in topics_markdown([])
