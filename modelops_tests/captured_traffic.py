"""Traffic written the way the prediction server captures it, for tests that need real batches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from modelops.core.traffic import TrafficRecord, TrafficWriter


def write_captured_batch(folder: Path, classifier, texts: list[str], model_name: str = "support-router") -> list[str]:
    """One batch file of the classifier's real predictions on `texts`; returns the record ids."""
    predictions = classifier.predict(texts)
    records = [TrafficRecord(uuid.uuid4().hex, datetime.now(UTC), text, label, float(confidence), model_name, "1",
                             1.0, embedding.tolist())
               for text, label, confidence, embedding in zip(texts, predictions.labels, predictions.confidences,
                                                             predictions.embeddings, strict=True)]
    writer = TrafficWriter(folder, max_rows=len(records) + 1)
    writer.append(records)
    writer.close()
    return [r.id for r in records]
