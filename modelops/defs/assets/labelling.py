"""The labelling queue's body: which captured requests of a traffic window to label next, as data/labelling/<batch>.csv.

The drift sensor writes one (and reports it as this asset's materialisation) when drift calls for retraining but
the new labels are too few; an operator can also materialise it for any traffic batch from the UI.
"""

# No `from __future__ import annotations` here: Dagster reads resource annotations at definition time.
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from modelops.core.markdown import frame_table
from modelops.defs.metadata import counts_table, path_metadata
from modelops.defs.resources import DataLake, DataLakes, PolicyFiles, customisation_of

if TYPE_CHECKING:
    import pandas as pd

PREVIEW_ROWS = 20


def _pending_counts(lake: DataLake) -> dict[str, int]:
    """Labels the last curation held back, and how many more labelled rows each needs (train + test)."""
    if not lake.record_path("curated_training_set").is_file():
        return {}
    pending = lake.read_record("curated_training_set").get("pending_labels", {})
    return {label: int(p["needs_train"]) + int(p["needs_test"]) for label, p in pending.items()}


def write_labelling_queue(lake: DataLake, window: "pd.DataFrame", batch_id: str,
                          size: int) -> tuple[Path, dict]:
    """Queue the `size` most useful rows of `window` (captured traffic ending with `batch_id`) for labelling, rows
    for the labels curation holds back first; never a row already labelled or in another queue."""
    from modelops.core.data.feedback import read_feedback
    from modelops.core.monitoring.labelling_queue import pending_needs, queued_ids, select_for_labelling, write_queue
    from modelops.core.monitoring.traffic import list_batches, validate_batches

    settings = lake.settings
    feedback = read_feedback(settings.feedback_dir).valid
    needed = _pending_counts(lake)
    traffic = validate_batches(settings.production_dir, list_batches(settings.production_dir),
                               settings.max_text_chars).valid if needed else None
    pending = pending_needs(traffic, feedback, needed) if needed else []
    exclude = set(feedback["id"].astype(str)) | queued_ids(settings.labelling_dir, except_file=f"{batch_id}.csv")
    queue = select_for_labelling(window, size, exclude, pending)
    path = write_queue(settings.labelling_dir, batch_id, queue)
    kinds = queue["cluster"].map(lambda c: c if c.startswith("pending:") else "uncertain, one per cluster")
    return path, {
        "dagster/row_count": len(queue), "path": path_metadata(path), "window_rows": len(window),
        "excluded_already_labelled_or_queued": int(window["id"].astype(str).isin(exclude).sum()),
        "pending_labels_asked_for": dg.MetadataValue.json({need.label: need.needed for need in pending}),
        "pending_labels_without_captured_examples": dg.MetadataValue.json(
            sorted(set(needed) - {need.label for need in pending})),
        "rows_by_reason": counts_table(kinds.value_counts().to_dict(), "queued for"),
        "mean_confidence": float(queue["confidence"].mean()) if len(queue) else float("nan"),
        "how_to_label": dg.MetadataValue.md(
            f"Add a `label` column to `{path.name}` (leave out rows you cannot label) and copy the file into "
            f"`{settings.feedback_dir}`; the next curation trains on it."),
        "preview": dg.MetadataValue.md(frame_table(queue.head(PREVIEW_ROWS), index=False)),
    }


def labelling_queue(context: dg.AssetExecutionContext, lakes: DataLakes,
                    policies: PolicyFiles) -> dg.MaterializeResult:
    """The captured requests of one traffic batch most worth labelling next (uncertain, spread across topics, held-back
    labels first), as data/labelling/<batch>.csv with id,text,predicted,confidence,cluster; labelled, it goes back
    through data/feedback/."""
    from modelops.core.config_files import load_config
    from modelops.core.monitoring.retrain_policy import RetrainPolicy
    from modelops.core.monitoring.traffic import validate_batch

    name, batch_id = customisation_of(context), context.partition_key
    lake = lakes.of(name)
    validation = validate_batch(lake.settings.production_dir, batch_id, lake.settings.max_text_chars)
    if not validation.usable or validation.valid.empty:
        raise dg.Failure(f"Traffic batch {batch_id} has no usable rows ({validation.error or 'empty'}).")
    size = load_config(Path(policies.of(name).retrain_config), RetrainPolicy).labelling_queue_size
    path, metadata = write_labelling_queue(lake, validation.valid, batch_id, size)
    context.log.info(f"queued {metadata['dagster/row_count']} rows for labelling in {path}")
    return dg.MaterializeResult(metadata=metadata)
