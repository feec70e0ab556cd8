"""Labelled feedback: `id,label` files in data/feedback/ joined with captured traffic to become training examples."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from modelops.core.schema import list_example_files, read_examples

log = logging.getLogger(__name__)


def read_feedback(feedback_dir: Path) -> pd.DataFrame:
    """All valid feedback rows (id, label); the latest file wins when an id is labelled twice."""
    frames = []
    for path in list_example_files(feedback_dir):
        result = read_examples(path, text_column="id", label_column="label")
        if not result.rejected.empty:
            log.warning("%s: %d feedback rows rejected (%s)", path.name, len(result.rejected),
                        result.rejected["reason"].value_counts().to_dict())
        frames.append(result.valid.rename(columns={"text": "id"}))
    if not frames:
        return pd.DataFrame({"id": pd.Series(dtype=str), "label": pd.Series(dtype=str)})
    feedback = pd.concat(frames, ignore_index=True)
    feedback["id"] = feedback["id"].str.strip()
    return feedback.drop_duplicates("id", keep="last")[["id", "label"]]


def labelled_feedback(production_dir: Path, feedback_dir: Path) -> pd.DataFrame:
    """Captured traffic that received a label: columns text, label, source ('feedback:<batch id>')."""
    from modelops.core.traffic import list_batches, read_batches

    feedback = read_feedback(feedback_dir)
    empty = pd.DataFrame({"text": pd.Series(dtype=str), "label": pd.Series(dtype=str), "source": pd.Series(dtype=str)})
    if feedback.empty:
        return empty
    traffic = read_batches(production_dir, list_batches(production_dir))
    if traffic.empty:
        return empty
    joined = traffic[["id", "text", "batch_id"]].merge(feedback, on="id", how="inner")
    unknown = len(feedback) - len(joined)
    if unknown:
        log.warning("%d feedback ids match no captured prediction", unknown)
    joined["source"] = "feedback:" + joined["batch_id"].astype(str)
    return joined[["text", "label", "source"]].reset_index(drop=True)
