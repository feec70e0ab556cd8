"""Drift check time at 1k / 10k / 100k rows: modelops's check vs Evidently's DataDriftPreset on the same columns.

The baseline is what a user would otherwise write: Evidently's `DataDriftPreset` over the full window (descriptor,
label and confidence columns plus 32 embedding dimensions as numeric columns). modelops subsamples deterministically,
checks 6 columns with per-column Jensen-Shannon `ValueDrift` and the embeddings with one domain classifier.
Times are end to end for one check, after a warm-up (the Evidently import is excluded from both).

Usage: python -m bench.drift_check_time
"""

from __future__ import annotations

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


def main() -> None:
    from bench.machine import write_result
    from modelops.core.drift import DriftConfig, build_vocabulary, check_drift
    from modelops.settings import PACKAGE_CONFIG_DIR

    config = DriftConfig.from_yaml(PACKAGE_CONFIG_DIR / "drift.yaml")
    reference = _window(2000, seed=1, shift=0.0)
    vocabulary = build_vocabulary(reference["text"])
    check_drift(reference, _window(500, seed=2, shift=0.0), vocabulary, config)  # warm-up: imports, caches
    rows = []
    for size in (1_000, 10_000, 100_000):
        current = _window(size, seed=3, shift=0.5)
        start = time.perf_counter()
        result = check_drift(reference, current, vocabulary, config)
        ours = time.perf_counter() - start
        baseline = _baseline(reference, current, vocabulary)
        rows.append({"rows": size, "modelops_seconds": round(ours, 3), "evidently_preset_seconds": round(baseline, 3),
                     "speedup": round(baseline / ours, 2), "severity": result.severity})
    write_result("drift_check_time", {"results": rows, "target": "100k rows < 6 s end to end"}, measurements(rows))


def measurements(rows: list[dict]) -> list[Measurement]:
    """Seconds per check at each size against DataDriftPreset on the same window; the target binds at 100k rows."""
    return [Measurement(f"drift_check_seconds_{row['rows'] // 1000}k", row["modelops_seconds"], "s",
                        row["evidently_preset_seconds"],
                        "< 6 s end to end" if row["rows"] == 100_000 else "reported (target at 100k)",
                        row["modelops_seconds"] < 6 if row["rows"] == 100_000 else True)
            for row in rows]


if __name__ == "__main__":
    main()
