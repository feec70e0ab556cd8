"""Which captured requests to label next: the most informative rows of a traffic window, spread across its topics.

The selection follows diverse mini-batch active learning (Zhdanov, 2019): keep the `PREFILTER_FACTOR` x N rows the
model is least sure of (uncertainty = 1 - confidence), group them into N clusters on their captured embeddings with
k-means weighted by uncertainty, and queue the row nearest each cluster's centre. Uncertainty alone would spend the
labels on near-copies of one confusing topic; the clusters spread them over every topic the model struggles with.

Labels still short of examples (held back by curation as pending) come first: for each, the window rows nearest the
captured requests already labelled with it, as many as it still needs. Rows already labelled or already in another
queue are never queued again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from modelops.core.atomic import write_atomic

QUEUE_COLUMNS = ["id", "text", "predicted", "confidence", "cluster"]
PREFILTER_FACTOR = 10  # Zhdanov (2019): cluster the 10 x N most uncertain rows
MAX_QUEUE_SIZE = 10_000


class LabellingQueueError(ValueError):
    """A labelling-queue setting is invalid."""


@dataclass(frozen=True)
class PendingNeed:
    """A label curation holds back, how many more labelled rows it needs, and where its labelled requests lie."""

    label: str
    needed: int
    centre: np.ndarray  # mean unit embedding of the captured requests already labelled with it


def check_queue_size(size: object) -> int:
    """The queue size as an int in [1, MAX_QUEUE_SIZE], else LabellingQueueError naming the setting."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise LabellingQueueError(f"labelling_queue_size must be a whole number of rows, got {size!r}")
    if not 1 <= size <= MAX_QUEUE_SIZE:
        raise LabellingQueueError(f"labelling_queue_size must be between 1 and {MAX_QUEUE_SIZE}, got {size}")
    return size


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)


def _embeddings(frame: pd.DataFrame) -> np.ndarray:
    return _unit(np.stack([np.asarray(v, dtype=np.float64) for v in frame["embedding"]]))


def pending_needs(traffic: pd.DataFrame, feedback: pd.DataFrame, needed: Mapping[str, int]) -> list[PendingNeed]:
    """For each pending label (label -> rows it still needs), the centre of the captured requests labelled with it;
    labels whose examples came from raw data only (no captured embedding) are left out."""
    labelled = traffic[["id", "embedding"]].merge(feedback[["id", "label"]], on="id")
    labelled = labelled[labelled["embedding"].map(lambda v: v is not None and len(v) > 0)]
    needs = []
    for label, count in needed.items():
        rows = labelled[labelled["label"] == label]
        if count > 0 and len(rows):
            needs.append(PendingNeed(label, int(count), _embeddings(rows).mean(axis=0)))
    return needs


def select_for_labelling(window: pd.DataFrame, size: int, exclude_ids: set[str] | frozenset[str] = frozenset(),
                         pending: list[PendingNeed] | None = None, seed: int = 0) -> pd.DataFrame:
    """Up to `size` rows of `window` (id, text, predicted_label, confidence, embedding) to label, most useful first,
    as QUEUE_COLUMNS."""
    from sklearn.cluster import KMeans

    size = check_queue_size(size)
    candidates = window[~window["id"].astype(str).isin(exclude_ids)]
    candidates = candidates[candidates["embedding"].map(lambda v: v is not None and len(v) > 0)]
    candidates = candidates.drop_duplicates("text").reset_index(drop=True)
    if candidates.empty:
        return pd.DataFrame(columns=QUEUE_COLUMNS)
    vectors = _embeddings(candidates)
    chosen: list[int] = []
    clusters: list[str] = []
    for need in pending or []:
        order = np.argsort(-(vectors @ (need.centre / max(np.linalg.norm(need.centre), 1e-12))))
        taken = set(chosen)
        picks = [int(i) for i in order if int(i) not in taken][:min(need.needed, size - len(chosen))]
        chosen += picks
        clusters += [f"pending:{need.label}"] * len(picks)
    remaining = np.setdiff1d(np.arange(len(candidates)), chosen)
    wanted = min(size - len(chosen), len(remaining))
    if wanted > 0:
        uncertainty = 1.0 - candidates["confidence"].to_numpy(dtype=np.float64)[remaining]
        pool = remaining[np.argsort(-uncertainty, kind="stable")[:PREFILTER_FACTOR * wanted]]
        weights = np.clip(1.0 - candidates["confidence"].to_numpy(dtype=np.float64)[pool], 1e-6, None)
        kmeans = KMeans(n_clusters=wanted, n_init=1, random_state=seed).fit(vectors[pool], sample_weight=weights)
        distances = np.linalg.norm(vectors[pool] - kmeans.cluster_centers_[kmeans.labels_], axis=1)
        by_cluster: dict[int, int] = {}
        for position in np.argsort(distances):
            by_cluster.setdefault(int(kmeans.labels_[position]), int(pool[position]))
        mass = np.bincount(kmeans.labels_, weights=weights, minlength=wanted)
        for cluster in sorted(by_cluster, key=lambda c: -mass[c]):  # the clusters holding most uncertainty first
            chosen.append(by_cluster[cluster])
            clusters.append(f"c{len(clusters)}")
    queue = candidates.iloc[chosen]
    return pd.DataFrame({"id": queue["id"].astype(str).to_numpy(), "text": queue["text"].to_numpy(),
                         "predicted": queue["predicted_label"].astype(str).to_numpy(),
                         "confidence": np.round(queue["confidence"].to_numpy(dtype=np.float64), 4),
                         "cluster": clusters})


def queued_ids(directory: Path, except_file: str | None = None) -> set[str]:
    """Ids in the queue files of `directory` (all but `except_file`)."""
    ids: set[str] = set()
    for path in sorted(Path(directory).glob("*.csv")) if Path(directory).is_dir() else []:
        if path.name != except_file:
            ids |= set(pd.read_csv(path, usecols=["id"], dtype=str)["id"].dropna())
    return ids


def write_queue(directory: Path, name: str, queue: pd.DataFrame) -> Path:
    """Write `queue` as `<directory>/<name>.csv` (atomic) and return its path."""
    path = Path(directory) / f"{name}.csv"
    return write_atomic(path, lambda tmp: queue[QUEUE_COLUMNS].to_csv(tmp, index=False))
