"""Candidate new intents in a traffic window: dense groups of unusual requests the reference has no room for.

1. A request is unusual when the champion is unsure of it or it lies away from everything the champion was checked
   on, both relative to the champion's own held-out rows: confidence below their 10th percentile
   (`LOW_CONFIDENCE_QUANTILE`), or distance to the nearest held-out row beyond the 90th percentile of the held-out
   rows' distances to their own nearest neighbour (`FAR_QUANTILE`). On stable traffic about a fifth of a window is
   unusual. Distance matters because a model often answers a topic it never saw with confidence (a new "PTO
   balance" intent lands on a known "balance" label), while its requests still sit apart from the known ones.
2. The unusual rows are clustered on their captured embeddings (L2-normalised, average linkage), cut at the
   spread of the champion's own intents: the median, over predicted labels, of the mean pairwise distance of the
   held-out rows given that label. A group is thus as tight as an intent the champion knows; it needs at least
   2 % of the window (and 5 rows). At most `MAX_CLUSTERED_ROWS` unusual rows are clustered (a sample).
3. A group is a candidate only if the reference cannot explain it: the reference rows that fall inside the
   group's radius (its members' 90th-percentile distance to their centroid) set the expected rate, with one
   pseudo-row, and the group must exceed that rate by a one-sided binomial test at `SIGNIFICANCE`. Ambiguous
   in-domain requests that the reference also holds stay quiet; a topic the champion never saw does not.

Each candidate reports its size, its share of the window, the 5 requests nearest its centre and the labels the
model gave its requests, so an operator sees "about 18 % of today's traffic looks like one new topic".
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelops.core.monitoring.drift_config import CONFIDENCE_COLUMN, EMBEDDING_COLUMN, LABEL_COLUMN

LOW_CONFIDENCE_QUANTILE = 0.1
FAR_QUANTILE = 0.9
MIN_SHARE = 0.02
MIN_ROWS = 5
SIGNIFICANCE = 0.01
EXAMPLES = 5
MAX_CLUSTERED_ROWS = 2000


@dataclass(frozen=True)
class TopicCandidate:
    """One group of unusual requests that looks like a topic the champion was not trained on."""

    size: int
    share: float  # of the window
    examples: list[str]
    predicted_labels: dict[str, int]  # what the model called them
    reference_rows_nearby: int
    members: list[str]  # the requests' ids (captured traffic), else their positions in the window


def topics_markdown(candidates: list[TopicCandidate]) -> str:
    """The candidates as a markdown table (Dagster metadata, MLflow drift report)."""
    if not candidates:
        return "No group of unusual requests that the champion's held-out rows cannot explain."
    lines = ["| share of window | requests | labels the model gave | examples |", "|---:|---:|---|---|"]
    for c in candidates:
        labels = ", ".join(f"{label} ({n})" for label, n in list(c.predicted_labels.items())[:3])
        examples = " / ".join(e.replace("|", "\\|")[:80] for e in c.examples)
        lines.append(f"| {c.share:.1%} | {c.size} | {labels} | {examples} |")
    return "\n".join(lines)


def _unit_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings of the rows that have one, and those rows' positions."""
    positions = [i for i, v in enumerate(frame[EMBEDDING_COLUMN]) if v is not None and np.ndim(v) == 1]
    if not positions:
        return np.empty((0, 0)), np.array([], dtype=int)
    matrix = np.stack([np.asarray(frame[EMBEDDING_COLUMN].iloc[i], dtype=np.float64) for i in positions])
    return matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None), np.array(positions)


def intent_spread(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Median over labels (with >= 3 rows) of the mean pairwise distance of the rows given that label."""
    from scipy.spatial.distance import pdist

    spreads = [float(pdist(vectors[labels == label]).mean()) for label in np.unique(labels)
               if (labels == label).sum() >= 3]
    return float(np.median(spreads)) if spreads else float("nan")


def _far_from(reference: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Which `vectors` lie farther from their nearest reference row than FAR_QUANTILE of the reference rows lie from
    their own nearest other reference row."""
    from sklearn.neighbors import NearestNeighbors

    if len(reference) < 2 or not len(vectors):
        return np.zeros(len(vectors), dtype=bool)
    index = NearestNeighbors(n_neighbors=2).fit(reference)
    cutoff = float(np.quantile(index.kneighbors(reference)[0][:, 1], FAR_QUANTILE))
    return index.kneighbors(vectors, n_neighbors=1)[0][:, 0] > cutoff


def discover_new_topics(reference: pd.DataFrame, window: pd.DataFrame, seed: int = 0) -> list[TopicCandidate]:
    """Candidate new intents in `window` (traffic-shaped frames with text, predicted_label, confidence, embedding),
    largest first; empty without embeddings."""
    from scipy.stats import binom
    from sklearn.cluster import AgglomerativeClustering

    if EMBEDDING_COLUMN not in reference.columns or EMBEDDING_COLUMN not in window.columns:
        return []
    cutoff = float(np.quantile(reference[CONFIDENCE_COLUMN].to_numpy(dtype=np.float64), LOW_CONFIDENCE_QUANTILE))
    reference_vectors, reference_positions = _unit_rows(reference)
    vectors, positions = _unit_rows(window)
    low_confidence = window[CONFIDENCE_COLUMN].to_numpy(dtype=np.float64)[positions] < cutoff
    unusual = positions[low_confidence | _far_from(reference_vectors, vectors)]
    min_rows = max(MIN_ROWS, math.ceil(MIN_SHARE * len(window)))
    spread = intent_spread(reference_vectors, reference[LABEL_COLUMN].astype(str).to_numpy()[reference_positions])
    if len(unusual) < min_rows or math.isnan(spread):
        return []
    if len(unusual) > MAX_CLUSTERED_ROWS:
        unusual = np.sort(np.random.default_rng(seed).choice(unusual, MAX_CLUSTERED_ROWS, replace=False))
    unusual_vectors = vectors[np.searchsorted(positions, unusual)]
    groups = AgglomerativeClustering(n_clusters=None, distance_threshold=spread, linkage="average").fit_predict(
        unusual_vectors)
    candidates = []
    for group in sorted(set(groups)):
        if (groups == group).sum() < min_rows:
            continue
        members = unusual_vectors[groups == group]
        rows = window.iloc[unusual[groups == group]]
        centre = members.mean(axis=0)
        distances = np.linalg.norm(members - centre, axis=1)
        radius = float(np.quantile(distances, 0.9))
        nearby = int((np.linalg.norm(reference_vectors - centre, axis=1) <= radius).sum())
        expected_rate = (nearby + 1) / (len(reference_vectors) + 1)
        if binom.sf(len(members) - 1, len(window), expected_rate) >= SIGNIFICANCE:
            continue
        nearest = rows.iloc[np.argsort(distances)[:EXAMPLES]]["text"].astype(str).tolist()
        ids = rows["id"].astype(str) if "id" in rows.columns else pd.Series(unusual[groups == group]).astype(str)
        candidates.append(TopicCandidate(
            size=len(members), share=len(members) / len(window), examples=nearest,
            predicted_labels=dict(Counter(rows[LABEL_COLUMN].astype(str)).most_common()),
            reference_rows_nearby=nearby, members=ids.tolist()))
    return sorted(candidates, key=lambda c: c.size, reverse=True)
