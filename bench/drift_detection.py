"""Drift detection quality of the real drift check: false alarms on stable traffic, detection of injected shifts.

What is checked is exactly what `modelops.defs.sensors.drift_sensor` runs on a window of captured traffic:
`check_drift(reference, window, vocabulary, DriftConfig.from_yaml(modelops/config/drift.yaml))`, and a window
"requests a retrain" when the sensor's decision would: `result.retrain_recommended` (drift detected; the shipped
config does not require an accuracy drop) and then `decide_retrain(result.severity, True, ...)` with the shipped
`retrain.yaml`. The two guards that are not about detection are neutralised, so every window is judged alone:
labelled feedback is assumed present (`new_labels = min_new_labels`) and there is no past run (no cooldown, no
daily budget). A false alarm is therefore a stable window that would request a retrain as soon as labels exist.

Model outputs are real. The check compares `predicted_label`, `confidence` and the 32-d `embedding` column, and
on real traffic those come from the champion; `bench/drift_check_time.py`'s `_window` synthesises them from the
shift parameter (confidence drops and embeddings move by construction), which would decide the outcome instead of
the text. So, as the product does: the corpus of `make demo` (`generate_corpus(3000, seed=0)`) goes through
`validate_records` + `curate`; a LoRA adapter is trained on the curated train split with the product's training
code and `training.yaml` (capped at `--train-epochs`, default 1, to fit the time budget); the reference is
`build_reference(classifier, curated validation + test texts, curated train texts)` like the `champion` asset,
stored with `save_reference` and read with `load_reference`; traffic rows get `classifier.predict(raw text)` like
the server (label, calibrated confidence, embedding). The adapter, reference and predicted pools are cached
under `<MODELOPS_HOME>/bench/drift_detection/<key>` (key: epochs, datagen.py, curate.py, training.yaml; use
`--no-cache` after changing training or prediction code).

Traffic comes from `modelops.core.datagen`. Predicting every window from scratch does not fit the time budget on
2 CPU cores (15-35 tickets/s measured here), so tickets are predicted once into pools and windows drawn from them:
- baseline pool: `generate_corpus(--baseline-pool, seed=1000)`;
- per scenario, the rows the generator changes: `new_product` / `language_shift` at severity 1 (every row is a
  changed row; the rendering of a changed row does not depend on severity), `prior_shift` at severity 1 (outage
  intent mix; texts stay in-distribution), and for `length_shift` (added context grows with severity) the rows of
  `generate_scenario("length_shift", ., severity=s)` that differ from `generate_corpus` with the same seed.
A window at severity s takes Binomial(window, s) rows from the scenario pool and the rest from the baseline pool,
without replacement, from a new seed per window. That is the generator's own mixture (row-level scenarios change a
row with probability s; prior_shift priors are (1 - s) * baseline + s * outage), so a window has the distribution
of `generate_scenario(name, window, new_seed, s)`; pools only bound how many distinct tickets exist (a stable
day's 400 rows are a fifth of the 2,000-ticket baseline pool, so days overlap and are not fully independent).

(a) Stable traffic: `--days` (30) windows of `--window-rows` (400 = the demo's normal send, two server batches of
200), one per day, each a new draw of the baseline pool. Reported: retrain requests per 30 days (target <= 1),
per-window false-alarm rate, severities and the per-column scores (max, how often over the threshold).
(b) Injected shifts: every scenario at each `--severities` (0.2 mild, 0.5, 0.8 strong = the demo's), `--trials`
each; the shift starts at a window boundary and lasts; it is detected when either of the first 2 windows after it
starts requests a retrain (the check is stateless across windows, so windows are independent). Reported per
scenario and severity and overall (target >= 90% of injected shifts), with the scores of every checked window.
Check time per window: wall time of each `check_drift` call after one warm-up (the Evidently import excluded).
There is no baseline detector in the same run (ratios are None); the figures are rates against fixed targets.

Usage: python -m bench.drift_detection [--days 30] [--trials 5] [--severities 0.2 0.5 0.8] [--no-cache]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.machine import Measurement

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SCENARIO_NAMES = ("new_product", "prior_shift", "language_shift", "length_shift")
SEVERITY_INDEPENDENT = ("new_product", "prior_shift", "language_shift")  # changed rows look alike at any severity
WINDOWS_TO_DETECT = 2
CORPUS_ROWS, CORPUS_SEED = 3000, 0  # what `make demo` trains the first champion on
BASELINE_SEED, SCENARIO_SEED = 1000, 2000
FALSE_ALARM_TARGET, DETECTION_TARGET = 1.0, 0.90


@dataclass(frozen=True)
class Options:
    days: int = 30
    window_rows: int = 400
    severities: tuple[float, ...] = (0.2, 0.5, 0.8)
    trials: int = 5
    baseline_pool: int = 2000
    scenario_pool: int = 400
    train_epochs: int = 1
    cache: bool = True


@dataclass(frozen=True)
class Setup:
    """The champion's reference and vocabulary, and predicted traffic pools (traffic-shaped frames)."""

    reference: pd.DataFrame
    vocabulary: frozenset[str]
    baseline: pd.DataFrame
    shifted: dict[tuple[str, float], pd.DataFrame]  # (scenario, severity) -> changed rows, predicted
    model: dict[str, Any]


# ---------------------------------------------------------------------------------------------- setup


def _cache_dir(options: Options) -> Path:
    """<home>/bench/drift_detection/<key>: the key covers the training epochs, the generator, curation and the
    training policy (pool files are named by their sizes). Changes to training or prediction code are not in the
    key (the working tree changes often); pass --no-cache after them."""
    from modelops.settings import PACKAGE_CONFIG_DIR, load_settings

    core = Path(__file__).resolve().parents[1] / "modelops" / "core"
    digest = hashlib.sha256(f"epochs={options.train_epochs}".encode())
    for path in (core / "datagen.py", core / "curate.py", PACKAGE_CONFIG_DIR / "training.yaml"):
        digest.update(path.read_bytes())
    return load_settings().home / "bench" / "drift_detection" / digest.hexdigest()[:16]


def _traffic(classifier: Any, texts: list[str]) -> pd.DataFrame:
    """What the server captures for these texts: raw text, predicted label, calibrated confidence, embedding."""
    predictions = classifier.predict(texts)
    return pd.DataFrame({"text": texts, "predicted_label": predictions.labels,
                         "confidence": predictions.confidences.astype(np.float64),
                         "embedding": list(predictions.embeddings)})


def _changed_texts(name: str, severity: float, rows: int) -> list[str]:
    """`rows` texts the generator changes under scenario `name` at `severity` (see the module docstring)."""
    from modelops.core.datagen import generate_corpus, generate_scenario

    if name in SEVERITY_INDEPENDENT:
        return generate_scenario(name, rows, seed=SCENARIO_SEED, severity=1.0)["text"].tolist()
    total = math.ceil(rows / severity * 1.2) + 50
    drifted = generate_scenario(name, total, seed=SCENARIO_SEED, severity=severity)["text"]
    plain = generate_corpus(total, seed=SCENARIO_SEED, label_noise=0.03)["text"]
    changed = drifted[drifted != plain].tolist()
    return changed[:rows]


def _train(cache: Path, epochs: int) -> tuple[Path, pd.DataFrame, dict[str, Any]]:
    """The adapter a bootstrap run would train (capped at `epochs`) and the curated set it was trained on."""
    import yaml

    from modelops.core.base_model import describe_base_model
    from modelops.core.curate import curate
    from modelops.core.datagen import generate_corpus
    from modelops.core.schema import validate_records
    from modelops.core.train import TrainingConfig, train_classifier_adapter
    from modelops.settings import PACKAGE_CONFIG_DIR, default_base_model_path

    raw = validate_records(generate_corpus(CORPUS_ROWS, seed=CORPUS_SEED).to_dict(orient="records"), "generator")
    curated, _ = curate(raw.valid)
    adapter = cache / "adapter"
    info_path = cache / "model.json"
    if info_path.is_file():
        return adapter, curated, {**json.loads(info_path.read_text()), "cached": True}
    values = yaml.safe_load((PACKAGE_CONFIG_DIR / "training.yaml").read_text()) or {}
    config = TrainingConfig.from_dict({**values, "mode": "full", "epochs": epochs})
    started = time.perf_counter()
    result = train_classifier_adapter(curated[curated["split"] == "train"],
                                      curated[curated["split"] == "validation"],
                                      describe_base_model(default_base_model_path()), config, adapter)
    info = {"val_macro_f1": round(result.best_score, 4), "steps": result.steps, "epochs": epochs,
            "temperature": round(result.temperature, 4), "train_seconds": round(time.perf_counter() - started, 1),
            "train_rows": int((curated["split"] == "train").sum())}
    info_path.write_text(json.dumps(info))
    return adapter, curated, {**info, "cached": False}


def _setup(options: Options) -> Setup:
    """Train (or reuse) the champion, build its reference like the `champion` asset, predict the traffic pools."""
    import shutil

    from modelops.core.base_model import describe_base_model
    from modelops.core.datagen import generate_corpus
    from modelops.core.predictor import AdapterClassifier
    from modelops.core.reference import build_reference, load_reference, save_reference
    from modelops.settings import default_base_model_path

    cache = _cache_dir(options)
    if not options.cache:
        shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    adapter, curated, model = _train(cache, options.train_epochs)
    classifier = AdapterClassifier(describe_base_model(default_base_model_path()), adapter)
    started = time.perf_counter()
    if load_reference(cache / "reference", "1") is None:
        held_out = curated[curated["split"] != "train"]["text"].tolist()
        save_reference(cache / "reference", "1", *build_reference(
            classifier, held_out, curated[curated["split"] == "train"]["text"].tolist()))
    reference, vocabulary = load_reference(cache / "reference", "1")  # type: ignore[misc]

    def pool(name: str, texts: Any) -> pd.DataFrame:
        path = cache / f"pool-{name}.parquet"
        if not path.is_file():
            _traffic(classifier, list(texts())).to_parquet(path)
        frame = pd.read_parquet(path)
        frame["embedding"] = [np.asarray(v, dtype=np.float32) for v in frame["embedding"]]
        return frame

    baseline = pool(f"baseline-{options.baseline_pool}",
                    lambda: generate_corpus(options.baseline_pool, seed=BASELINE_SEED)["text"])
    shifted: dict[tuple[str, float], pd.DataFrame] = {}
    for name in SCENARIO_NAMES:
        for severity in options.severities:
            key = f"{name}-{options.scenario_pool}" if name in SEVERITY_INDEPENDENT else \
                f"{name}-{severity}-{options.scenario_pool}"
            shifted[(name, severity)] = pool(
                key, lambda n=name, s=severity: _changed_texts(n, s, options.scenario_pool))
    model["prediction_seconds"] = round(time.perf_counter() - started, 1)
    model["reference_rows"] = len(reference)
    model["cache_dir"] = str(cache)
    return Setup(reference, vocabulary, baseline, shifted, model)


# ---------------------------------------------------------------------------------------------- windows and checks


def _window(setup: Setup, rows: int, seed: Sequence[int], scenario: str | None = None,
            severity: float = 0.0) -> pd.DataFrame:
    """A traffic window: Binomial(rows, severity) changed rows, the rest baseline rows, no row twice."""
    rng = np.random.default_rng(list(seed))
    changed = setup.shifted[(scenario, severity)] if scenario else None
    n_changed = 0 if changed is None else min(int(rng.binomial(rows, severity)), len(changed))
    parts = [setup.baseline.iloc[rng.choice(len(setup.baseline), rows - n_changed, replace=False)]]
    if changed is not None and n_changed:
        parts.append(changed.iloc[rng.choice(len(changed), n_changed, replace=False)])
    frame = pd.concat(parts, ignore_index=True)
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


@dataclass
class Check:
    """One window's outcome as the sensor would see it."""

    severity: str
    requests_retrain: bool
    mode: str | None
    scores: dict[str, float]
    drifted: list[str]
    seconds: float

    def brief(self) -> dict[str, Any]:
        return {"severity": self.severity, "mode": self.mode, "drifted": self.drifted,
                "scores": {k: round(v, 4) for k, v in self.scores.items()}}


class Checker:
    """The sensor's check and retrain decision, with labels assumed present and no cooldown/budget history."""

    def __init__(self, setup: Setup) -> None:
        from modelops.core.drift import DriftConfig
        from modelops.core.retrain_policy import load_retrain_policy
        from modelops.settings import PACKAGE_CONFIG_DIR

        self.setup = setup
        self.config = DriftConfig.from_yaml(PACKAGE_CONFIG_DIR / "drift.yaml")
        self.policy = load_retrain_policy(PACKAGE_CONFIG_DIR / "retrain.yaml")
        self.seconds: list[float] = []

    def __call__(self, window: pd.DataFrame, timed: bool = True) -> Check:
        from modelops.core.drift import check_drift
        from modelops.core.retrain_policy import decide_retrain

        started = time.perf_counter()
        result = check_drift(self.setup.reference, window, self.setup.vocabulary, self.config)
        seconds = time.perf_counter() - started
        if timed:
            self.seconds.append(seconds)
        decision = decide_retrain(result.severity, result.retrain_recommended, [], time.time(), self.policy,
                                  self.policy.min_new_labels)
        return Check(result.severity, decision.mode is not None, decision.mode, result.column_scores,
                     result.drifted_columns, seconds)


def _stable(checker: Checker, options: Options) -> dict[str, Any]:
    checks = [checker(_window(checker.setup, options.window_rows, (1, day))) for day in range(options.days)]
    alarms = [day for day, check in enumerate(checks) if check.requests_retrain]
    columns = sorted({c for check in checks for c in check.scores})
    return {
        "days": options.days, "window_rows": options.window_rows, "retrain_requests": len(alarms),
        "false_alarms_per_30_days": round(len(alarms) * 30 / options.days, 2),
        "false_alarm_rate_per_window": round(len(alarms) / options.days, 4),
        "severity_counts": {s: sum(c.severity == s for c in checks) for s in ("none", "moderate", "severe")},
        "column_max_score": {c: round(max(check.scores.get(c, 0.0) for check in checks), 4) for c in columns},
        "column_mean_score": {c: round(float(np.mean([check.scores.get(c, 0.0) for check in checks])), 4)
                              for c in columns},
        "column_over_threshold_days": {c: sum(c in check.drifted for check in checks) for c in columns},
        "alarm_days": {str(day): checks[day].brief() for day in alarms},
        "scores_per_day": [{k: round(v, 4) for k, v in check.scores.items()} for check in checks],
    }


def _shifts(checker: Checker, options: Options) -> dict[str, Any]:
    cells: list[dict[str, Any]] = []
    for s_index, name in enumerate(SCENARIO_NAMES):
        for v_index, severity in enumerate(options.severities):
            detected_at: list[int | None] = []
            first_windows: list[Check] = []
            windows: list[dict[str, Any]] = []
            for trial in range(options.trials):
                at = None
                for w in range(WINDOWS_TO_DETECT):
                    window = _window(checker.setup, options.window_rows, (2, s_index, v_index, trial, w), name,
                                     severity)
                    check = checker(window)
                    if w == 0:
                        first_windows.append(check)
                    windows.append({"trial": trial, "window": w + 1, "requests_retrain": check.requests_retrain,
                                    **check.brief()})
                    if check.requests_retrain:
                        at = w + 1
                        break
                detected_at.append(at)
            detected = sum(a is not None for a in detected_at)
            cells.append({
                "scenario": name, "severity": severity, "trials": options.trials, "detected": detected,
                "detection_rate": round(detected / options.trials, 4),
                "detected_in_first_window": sum(a == 1 for a in detected_at),
                "first_window_severity_counts": {s: sum(c.severity == s for c in first_windows)
                                                 for s in ("none", "moderate", "severe")},
                "first_window_mean_scores": {c: round(float(np.mean([f.scores.get(c, 0.0) for f in first_windows])), 4)
                                             for c in sorted({c for f in first_windows for c in f.scores})},
                "windows": windows,
            })
    total = sum(c["trials"] for c in cells)
    found = sum(c["detected"] for c in cells)
    per_scenario = {name: round(sum(c["detected"] for c in cells if c["scenario"] == name)
                                / sum(c["trials"] for c in cells if c["scenario"] == name), 4)
                    for name in SCENARIO_NAMES}
    per_severity = {str(sev): round(sum(c["detected"] for c in cells if c["severity"] == sev)
                                    / sum(c["trials"] for c in cells if c["severity"] == sev), 4)
                    for sev in options.severities}
    missed = [f"{c['scenario']}@{c['severity']}: {c['trials'] - c['detected']}/{c['trials']} missed"
              for c in cells if c["detected"] < c["trials"]]
    return {"windows_to_detect": WINDOWS_TO_DETECT, "injected_shifts": total, "detected": found,
            "detection_rate": round(found / total, 4), "per_scenario": per_scenario, "per_severity": per_severity,
            "missed": missed, "cells": cells}


# ---------------------------------------------------------------------------------------------- main


def run(options: Options) -> dict[str, Any]:
    started = time.perf_counter()
    load_average_start = os.getloadavg()[0]
    setup = _setup(options)
    checker = Checker(setup)
    setup_seconds = time.perf_counter() - started
    warm = time.perf_counter()
    checker(_window(setup, options.window_rows, (0, 0)), timed=False)  # warm-up: imports Evidently
    warm_seconds = time.perf_counter() - warm
    stable = _stable(checker, options)
    shifts = _shifts(checker, options)
    seconds = np.asarray(checker.seconds)
    timing = {"checks": len(seconds), "median_seconds": round(float(np.median(seconds)), 3),
              "p95_seconds": round(float(np.percentile(seconds, 95)), 3), "max_seconds": round(float(seconds.max()), 3),
              "first_check_with_evidently_import_seconds": round(warm_seconds, 2)}
    return {"options": {**asdict(options), "severities": list(options.severities)}, "model": setup.model,
            "setup_seconds": round(setup_seconds, 1), "stable": stable, "shifts": shifts, "check_time": timing,
            "total_seconds": round(time.perf_counter() - started, 1),
            "load_average_1m": {"start": round(load_average_start, 2), "end": round(os.getloadavg()[0], 2)},
            "targets": {"false_alarms_per_30_days": f"<= {FALSE_ALARM_TARGET:g}",
                        "detection_rate": f">= {DETECTION_TARGET:.0%} of injected shifts within "
                                          f"{WINDOWS_TO_DETECT} windows"}}


def measurements(result: dict[str, Any]) -> list[Measurement]:
    """False alarms per 30 stable days and the overall detection rate bind; per-scenario rates and time are reported."""
    stable, shifts, timing = result["stable"], result["shifts"], result["check_time"]
    rows = [
        Measurement("drift_false_alarm_retrains_per_30_days", stable["false_alarms_per_30_days"], "retrains", None,
                    f"<= {FALSE_ALARM_TARGET:g} per 30 stable days ({stable['window_rows']}-row daily windows)",
                    stable["false_alarms_per_30_days"] <= FALSE_ALARM_TARGET),
        Measurement("drift_detection_rate", round(100 * shifts["detection_rate"], 2), "%", None,
                    f">= {DETECTION_TARGET:.0%} of {shifts['injected_shifts']} injected shifts within "
                    f"{WINDOWS_TO_DETECT} windows", shifts["detection_rate"] >= DETECTION_TARGET),
    ]
    rows += [Measurement(f"drift_detection_rate_{name}", round(100 * rate, 2), "%", None,
                         "reported (target binds overall)", True)
             for name, rate in shifts["per_scenario"].items()]
    rows.append(Measurement("drift_detection_check_seconds_per_window", timing["median_seconds"], "s", None,
                            "reported (median per window, Evidently import excluded)", True))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    from bench.machine import write_result

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    defaults = Options()
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--window-rows", type=int, default=defaults.window_rows)
    parser.add_argument("--severities", type=float, nargs="+", default=list(defaults.severities))
    parser.add_argument("--trials", type=int, default=defaults.trials)
    parser.add_argument("--baseline-pool", type=int, default=defaults.baseline_pool)
    parser.add_argument("--scenario-pool", type=int, default=defaults.scenario_pool)
    parser.add_argument("--train-epochs", type=int, default=defaults.train_epochs)
    parser.add_argument("--no-cache", action="store_true", help="retrain and re-predict instead of reusing the cache")
    args = parser.parse_args(argv)
    if not all(0 < s <= 1 for s in args.severities):
        parser.error("--severities must be in (0, 1]: the share of traffic the scenario changes")
    options = Options(args.days, args.window_rows, tuple(args.severities), args.trials, args.baseline_pool,
                      args.scenario_pool, args.train_epochs, not args.no_cache)
    result = run(options)
    write_result("drift_detection", result, measurements(result))


if __name__ == "__main__":
    main()
