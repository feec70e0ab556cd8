"""Defaults used in more than one place, each with one home: text length limit, loopback addresses, UI ports,
the drift sensor's interval."""

from __future__ import annotations

from typing import Final

MAX_TEXT_CHARS: Final = 2000  # longer texts are refused (quarantined, or a 4xx when served)
LOOPBACK: Final = "127.0.0.1"  # where servers and UIs listen unless told otherwise
LOOPBACK_HOSTS: Final = (LOOPBACK, "localhost", "::1")
DAGSTER_UI_PORT: Final = 3000
MLFLOW_UI_PORT: Final = 5000
DAGSTER_UI_URL: Final = f"http://{LOOPBACK}:{DAGSTER_UI_PORT}"
MLFLOW_UI_URL: Final = f"http://{LOOPBACK}:{MLFLOW_UI_PORT}"
GENERATED_ROWS: Final = 3000  # size of the generated default corpus
REPRODUCE_TOLERANCE: Final = 0.005  # macro-F1 points (absolute) a rebuilt version may differ by on its test split
DRIFT_SENSOR_INTERVAL_SECONDS: Final = 15  # between two drift-sensor ticks (MODELOPS_DRIFT_SENSOR_INTERVAL_SECONDS)
