"""Drift check time at 1k / 10k / 100k rows, and the calibration at promotion.

modelops's check (calibrated thresholds, deterministic subsampling, 6 Jensen-Shannon columns, one embedding domain
classifier, the label-free accuracy test) is timed end to end after a warm-up (the Evidently import excluded), 3
repetitions per size alternating with the reference figure, median and min-max reported. The reference figure is
Evidently's `DataDriftPreset` over the whole window (descriptor, label and confidence columns plus 32 embedding
dimensions as numeric columns): not the same work (no subsampling, 38 columns), so its ratio only says what a user
who ran the preset would wait, not a like-for-like speed-up (issue 20 asks for a same-work baseline).
The calibration is `calibrate_drift` on a 2,000-row reference.

Usage: python -m bench.drift_check_time
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from bench.machine import Measurement


def _window(rows: int, seed: int, shift: float) -> pd.DataFrame:
    from modelops.core.datagen import generate_corpus, generate_scenario

    rng = np.random.default_rng(seed)
    base = generate_scenario("language_shift", min(rows, 20_000), seed=seed, severity=shift) if shift else \
        generate_corpus(min(rows, 20_000), seed=seed)
    frame = base.sample(n=rows, replace=rows > len(base), random_state=seed).reset_index(drop=True)
    return pd.DataFrame({
        "text": frame["text"], "predicted_label": frame["label"],
        "confidence": np.clip(rng.normal(0.9 - shift * 0.2, 0.05, rows), 0, 1),
        "embedding": list(rng.normal(shift, 1.0, (rows, 32)).astype(np.float32)),
    })


def _baseline(reference: pd.DataFrame, current: pd.DataFrame, vocabulary: frozenset[str]) -> float:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from modelops.core.drift import text_descriptors

    def table(frame: pd.DataFrame) -> pd.DataFrame:
        out = text_descriptors(frame["text"].tolist(), vocabulary)
        out["predicted_label"] = frame["predicted_label"].to_numpy()
        out["confidence"] = frame["confidence"].to_numpy()
        emb = np.stack(frame["embedding"].to_numpy())
        for i in range(emb.shape[1]):
            out[f"embedding_{i}"] = emb[:, i]
        return out

    start = time.perf_counter()
    ref, cur = table(reference), table(current)
    numeric = [c for c in ref.columns if c != "predicted_label"]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=["predicted_label"])
    Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                    Dataset.from_pandas(ref, data_definition=definition))
    return time.perf_counter() - start


REPETITIONS = 3


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main() -> None:
    from bench.machine import provenance, write_result
    from modelops.core.drift import DriftConfig, build_vocabulary, check_drift
    from modelops.core.drift_calibration import calibrate_drift
    from modelops.settings import PACKAGE_CONFIG_DIR

    config = DriftConfig.from_yaml(PACKAGE_CONFIG_DIR / "drift.yaml")
    reference = _window(2000, seed=1, shift=0.0)
    vocabulary = build_vocabulary(reference["text"])
    calibration_seconds = []
    for _ in range(REPETITIONS):
        started = time.perf_counter()
        calibration = calibrate_drift(reference, vocabulary, config)
        calibration_seconds.append(time.perf_counter() - started)
    check_drift(reference, _window(500, seed=2, shift=0.0), vocabulary, config, calibration)  # warm-up
    rows = []
    for size in (1_000, 10_000, 100_000):
        current = _window(size, seed=3, shift=0.5)
        ours, preset = [], []
        for _ in range(REPETITIONS):
            started = time.perf_counter()
            result = check_drift(reference, current, vocabulary, config, calibration)
            ours.append(time.perf_counter() - started)
            preset.append(_baseline(reference, current, vocabulary))
        rows.append({"rows": size, "modelops_seconds": _spread(ours), "evidently_preset_seconds": _spread(preset),
                     "severity": result.severity})
    write_result("drift_check_time", {"provenance": provenance(["modelops/core/drift.py",
                                                                 "modelops/core/drift_calibration.py"]),
                                      "repetitions": REPETITIONS, "results": rows,
                                      "calibration_seconds": _spread(calibration_seconds),
                                      "target": "100k rows < 2 s end to end; calibration < 30 s"},
                 measurements(rows))


def measurements(rows: list[dict]) -> list[Measurement]:
    """Median seconds per check at each size; the target binds at 100k rows. The preset is a reference figure."""
    return [Measurement(f"drift_check_seconds_{row['rows'] // 1000}k", row["modelops_seconds"]["median"], "s",
                        row["evidently_preset_seconds"]["median"],
                        "< 2 s end to end" if row["rows"] == 100_000 else "reported (target at 100k)",
                        row["modelops_seconds"]["median"] < 2 if row["rows"] == 100_000 else None)
            for row in rows]


if __name__ == "__main__":
    main()
