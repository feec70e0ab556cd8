"""The Evidently report behind a drift check: Jensen-Shannon value drift per column and a small custom metric for the
embedding domain classifier (Evidently's own EmbeddingsDrift always fits a t-SNE for its plot, ~30 s on 5k rows)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import pandas as pd

from modelops.core.monitoring.drift_config import EMBEDDING_COLUMN, LABEL_COLUMN

COLUMN_DRIFT_METHOD = "jensenshannon"


def run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    checked: Sequence[str],
    embedding_columns: list[str],
    thresholds: dict[str, float],
) -> tuple[dict[str, float], str]:
    """Run the Evidently report on the `checked` value columns (Jensen-Shannon; `predicted_label` categorical, the
    others numerical) and the embedding columns; returns the drift score per test and the standalone HTML."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.tests import lt

    metrics: list[Any] = [
        ValueDrift(column=column, method=COLUMN_DRIFT_METHOD, threshold=thresholds[column])
        for column in checked
    ]
    if embedding_columns:
        metrics.append(_embedding_metric()(columns=embedding_columns, tests=[lt(thresholds[EMBEDDING_COLUMN])]))
    definition = DataDefinition(  # every list given, so Evidently infers nothing; embeddings get no column stats
        numerical_columns=[column for column in checked if column != LABEL_COLUMN],
        categorical_columns=[LABEL_COLUMN],
        unknown_columns=embedding_columns,
        text_columns=[],
        datetime_columns=[],
        list_columns=[],
    )
    columns = [*checked, *embedding_columns]
    snapshot = Report(metrics).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    scores = {
        metric["config"].get("column", EMBEDDING_COLUMN): float(metric["value"])
        for metric in snapshot.dict()["metrics"]
    }
    return scores, snapshot.get_html_str(as_iframe=False)


@functools.cache
def _embedding_metric() -> type:
    """The Evidently metric class for embedding drift (defined once, lazily, so evidently loads on demand)."""
    from evidently.core.metric_types import SingleValue, SingleValueCalculation, SingleValueMetric
    from evidently.metrics.embeddings import ModelDriftMethod

    class EmbeddingDomainClassifierDrift(SingleValueMetric):
        """ROC AUC of Evidently's reference-vs-current domain classifier on embedding columns."""

        class Config:
            type_alias = "modelops:metric_v2:EmbeddingDomainClassifierDrift"

        columns: list[str]

    class EmbeddingDomainClassifierDriftCalculation(SingleValueCalculation[EmbeddingDomainClassifierDrift]):
        def calculate(self, context: Any, current_data: Any, reference_data: Any) -> SingleValue:
            columns = self.metric.columns
            current_rows = current_data.as_dataframe()[columns].dropna().reset_index(drop=True)
            reference_rows = reference_data.as_dataframe()[columns].dropna().reset_index(drop=True)
            score, _, _ = ModelDriftMethod()(current_rows, reference_rows)
            return self.result(float(score))

        def display_name(self) -> str:
            return f"Embedding drift: domain classifier ROC AUC over {len(self.metric.columns)} dimensions"

    return EmbeddingDomainClassifierDrift

