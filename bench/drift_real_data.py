"""Drift detection on real text (CLINC150) and on the data generator: false alarms, detection, label-free accuracy.

What is checked is what `modelops.defs.sensors` runs on a window of captured traffic: `check_drift(reference,
window, vocabulary, config, calibration)` with the shipped policy `modelops/config/drift.yaml` (frozen before the
evaluation run; nothing here changes it) and thresholds from `calibrate_drift` on the champion's held-out rows,
as the `champion` asset calibrates them at promotion. A window *fires* when `result.drift_detected` (the shipped
policy has `require_accuracy_drop: false`, so `retrain_recommended` is the same flag; both are counted).

**CLINC150** (`../shared/datasets/clinc150`, Larson et al. 2019; real crowd-sourced queries nobody on this project
wrote, and no threshold or policy value was ever set by looking at it):
- held-out ("new") domain: the alphabetically last domain in `domains.json` (`work`), fixed before any result;
- champion: a LoRA adapter trained with the product's code (`validate_records` + `curate`, `TrainingConfig` from
  `training.yaml`, `train_classifier_adapter`) on `train.csv` of the 9 other domains, `--clinc-per-intent` (40)
  rows per intent drawn with seed 0 (135 intents, 5,400 rows), `--clinc-epochs` (2) epochs; early stopping and the
  temperature use `validation.csv` of the 9 domains, as training uses the curated validation split;
- reference and calibration: `build_reference(classifier, validation.csv of the 9 domains, training texts)`, then
  `calibrate_drift` (the champion asset does the same with its curated validation + test rows). The calibration
  split is used for nothing else;
- evaluation pools, each predicted once by the champion from raw text (label, calibrated confidence, embedding, as
  the server captures them) and never used for calibration: stable = `test.csv` of the 9 domains (4,050 rows),
  new domain = `test.csv` of `work` (450), out of scope = `out_of_scope.csv` split `test` (1,000). Realised
  accuracy = predicted label == true label; new-domain and out-of-scope rows always count as wrong.
- stable windows: `--stable-windows` per size, rows drawn uniformly without replacement from the stable pool, a new
  seed per window;
- shifts (each lasts 2 windows, `--clinc-trials` trials per cell): `new_domain` and `out_of_scope` at 5/10/20/50 %
  of the window (exactly round(share x size) rows from that pool, the rest stable); `domain_mix`: per trial 3 of
  the 9 domains drawn at random carry 60 % of the window (20 % each), the other 6 share 40 % (6.7 % each; stable
  traffic has 11.1 % per domain), row counts multinomial, rows drawn within each domain.

**Generator** (`modelops.core.data.datagen`, the protocol of the former `bench/drift_detection.py`): champion trained on
the curated `generate_corpus(3000, seed=0)` train split for `--generator-epochs` (1), reference = curated
validation + test predicted by it; stable pool `generate_corpus(--generator-pool, seed=1000)`; per scenario the rows
the generator changes (`new_product`, `prior_shift`, `language_shift` at severity 1: every row is a changed row;
`length_shift` per severity: rows of `generate_scenario` that differ from `generate_corpus` with the same seed); a
window at severity s holds Binomial(size, s) changed rows and the rest stable rows (the generator's own mixture);
severities 0.2 / 0.5 / 0.8, `--generator-trials` trials per cell. Its labels carry the generator's 3 % label noise,
which is in the realised accuracy.

Both data sets: window sizes 200 and 500 (a window uses the thresholds of the largest calibrated size <= its rows).
Detected within 1 = the shift's first window fires; within 2 = either of its 2 windows fires (the check is
stateless, so the second window is only checked when the first did not fire). A cell's realised accuracy drop =
realised accuracy of the whole stable pool minus the mean realised accuracy of the cell's windows (both windows of
every trial, checked or not). The headline detection rate counts only cells whose realised drop is >= 5 points.
False-alarm rate: share of stable windows that fire, with a 95 % Wilson interval (windows share one reference and
one calibration and overlap in rows, so the interval is for this champion). Label-free accuracy: the window's
`estimated_accuracy_current` (mean calibrated confidence plus the calibration's `accuracy_offset`, measured on the
labelled held-out rows) against its realised accuracy, on every window (for the unchecked second windows the same
estimate); mean absolute error on in-scope windows
(stable + `domain_mix` / `prior_shift`) and on all windows. Calibration seconds: `calibrate_drift` on the CLINC150
reference, `--calibration-repeats` runs (median). Check seconds: every `check_drift` call after one warm-up.

The adapters, references and predicted pools are cached under `<MODELOPS_HOME>/bench/drift_real_data/<data>-<key>`
(key: data files, sampling, epochs, curate.py, training.yaml (and datagen.py); pass `--no-cache` after changing
training or prediction code). There is no baseline detector in the same run: the figures are rates against fixed
targets.

Usage: python -m bench.drift_real_data [--quick] [--stable-windows 400] [--clinc-trials 20] [--generator-trials 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.machine import CLINC_DIR, RESULTS, ROOT, Measurement, provenance
from modelops.core.data.drift_scenarios import SCENARIOS

if TYPE_CHECKING:
    from modelops.core.monitoring.drift_calibration import DriftCalibration
    from modelops.core.monitoring.drift_config import DriftConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

WINDOW_SIZES = (200, 500)
WINDOWS_PER_SHIFT = 2
CLINC_SHARES = (0.05, 0.10, 0.20, 0.50)
DOMAIN_MIX_DOMAINS, DOMAIN_MIX_SHARE = 3, 0.60
GENERATOR_SEVERITIES = (0.2, 0.5, 0.8)
SEVERITY_INDEPENDENT = ("new_product", "prior_shift", "language_shift")  # changed rows look alike at any severity
IN_SCOPE_KINDS = ("stable", "domain_mix", "prior_shift")  # the label mix may move, every row has a known label
CORPUS_ROWS, CORPUS_SEED, BASELINE_SEED, SCENARIO_SEED = 3000, 0, 1000, 2000
ACCURACY_TEST = "estimated_accuracy_drop"
Z95 = 1.959963984540054

FALSE_ALARM_TARGET, FALSE_ALARM_UPPER_TARGET = 0.01, 0.02
DETECTION_TARGET, MATERIAL_DROP = 0.95, 0.05
MAE_TARGET = 0.02
CALIBRATION_SECONDS_TARGET = 30.0
SOURCES = ("modelops/core/monitoring/drift.py", "modelops/core/monitoring/drift_calibration.py", "modelops/core/monitoring/reference.py",
           "modelops/config/drift.yaml", "modelops/core/serving/predictor.py", "modelops/core/training/train.py")


@dataclass(frozen=True)
class Options:
    stable_windows: int = 400
    clinc_trials: int = 20
    generator_trials: int = 20
    sizes: tuple[int, ...] = WINDOW_SIZES
    clinc_per_intent: int = 40
    clinc_epochs: int = 2
    generator_epochs: int = 1
    generator_pool: int = 3000
    scenario_pool: int = 600
    calibration_repeats: int = 3
    clinc_dir: str = str(CLINC_DIR)
    cache: bool = True
    quick: bool = False


QUICK = {"stable_windows": 10, "clinc_trials": 2, "generator_trials": 1, "calibration_repeats": 1}


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------- training and pools


@dataclass
class Traffic:
    """One data set ready to evaluate: the champion's reference, calibration and predicted pools."""

    name: str
    reference: pd.DataFrame
    vocabulary: frozenset[str]
    calibration: DriftCalibration
    calibration_seconds: list[float]
    stable: pd.DataFrame  # text, predicted_label, confidence, embedding, correct (+ domain for CLINC150)
    cells: list[Cell]
    model: dict[str, Any]


@dataclass(frozen=True)
class Cell:
    """A shift: `draw(size, rng)` returns one window of it."""

    kind: str
    level: float
    draw: Callable[[int, np.random.Generator], pd.DataFrame]


def _digest(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()[:16]


def _cache(name: str, key: str, options: Options) -> Path:
    import shutil

    from modelops.settings import load_settings

    path = load_settings().home / "bench" / "drift_real_data" / f"{name}-{key}"
    if not options.cache:
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _curated(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The rows as ingestion and curation leave them (validated, normalised, PII-redacted, deduplicated, with
    curation's own `split`, which CLINC150 ignores: it keeps the data set's splits)."""
    from modelops.core.data.curate import curate
    from modelops.core.data.schema import validate_records

    checked = validate_records(frame[["text", "label"]].to_dict(orient="records"), source)
    return curate(checked.valid)[0]


def _train(cache: Path, train: pd.DataFrame, validation: pd.DataFrame, epochs: int) -> tuple[Path, dict[str, Any]]:
    """A LoRA adapter trained with the product's code and training.yaml (epochs capped), cached in `cache`."""
    import yaml

    from modelops.core.training.base_model import describe_base_model
    from modelops.core.training.train import train_classifier_adapter
    from modelops.core.training.training_config import TrainingConfig
    from modelops.settings import PACKAGE_CONFIG_DIR, default_base_model_path

    adapter, info_path = cache / "adapter", cache / "model.json"
    if info_path.is_file():
        return adapter, {**json.loads(info_path.read_text()), "cached": True}
    values = yaml.safe_load((PACKAGE_CONFIG_DIR / "training.yaml").read_text()) or {}
    config = TrainingConfig.model_validate({**values, "mode": "full", "epochs": epochs})
    _say(f"training {cache.name}: {len(train)} rows x {epochs} epochs")
    started = time.perf_counter()
    result = train_classifier_adapter(train, validation, describe_base_model(default_base_model_path()), config,
                                      adapter)
    info = {"train_rows": len(train), "validation_rows": len(validation), "labels": len(result.label_names),
            "epochs": epochs, "steps": result.steps, "val_macro_f1": round(result.best_score, 4),
            "temperature": round(result.temperature, 4), "samples_per_second": round(result.samples_per_second, 1),
            "train_seconds": round(time.perf_counter() - started, 1)}
    info_path.write_text(json.dumps(info))
    return adapter, {**info, "cached": False}


def _classifier(adapter: Path) -> Any:
    from modelops.core.serving.predictor import AdapterClassifier
    from modelops.core.training.base_model import describe_base_model
    from modelops.settings import default_base_model_path

    return AdapterClassifier(describe_base_model(default_base_model_path()), adapter)


def _reference(cache: Path, classifier: Any, held_out: pd.DataFrame,
               train: list[str]) -> tuple[pd.DataFrame, frozenset[str]]:
    """The champion asset's reference (held-out rows predicted by the champion with their true labels, training
    vocabulary), cached."""
    from modelops.core.monitoring.reference import build_reference, load_reference, save_reference

    folder = cache / "reference-labelled"
    if load_reference(folder, "1") is None:
        save_reference(folder, "1", *build_reference(classifier, held_out["text"].tolist(), train,
                                                     held_out["label"].tolist()))
    reference, vocabulary = load_reference(folder, "1")  # type: ignore[misc]
    return reference, vocabulary


def _pool(cache: Path, name: str, classifier: Any, rows: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """`rows` (text, label, extra columns) with what the server captures for them, and whether it is right."""
    path = cache / f"pool-{name}.parquet"
    if not path.is_file():
        frame = rows().reset_index(drop=True)
        started = time.perf_counter()
        predictions = classifier.predict(frame["text"].tolist())
        _say(f"predicted pool {name}: {len(frame)} rows in {time.perf_counter() - started:.1f}s")
        frame["predicted_label"] = predictions.labels
        frame["confidence"] = predictions.confidences.astype(np.float64)
        frame["embedding"] = list(predictions.embeddings)
        frame["correct"] = frame["predicted_label"] == frame["label"]
        frame.to_parquet(path)
    frame = pd.read_parquet(path)
    frame["embedding"] = [np.asarray(v, dtype=np.float32) for v in frame["embedding"]]
    return frame


def _calibrate(reference: pd.DataFrame, vocabulary: frozenset[str], config: DriftConfig,
               repeats: int) -> tuple[DriftCalibration, list[float]]:
    """The champion's calibration, and the wall seconds of `repeats` identical calibrations."""
    from modelops.core.monitoring.drift_calibration import calibrate_drift

    calibrations, seconds = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        calibrations.append(calibrate_drift(reference, vocabulary, config))
        seconds.append(round(time.perf_counter() - started, 3))
    if any(c.thresholds != calibrations[0].thresholds for c in calibrations):
        raise RuntimeError("calibrate_drift gave different thresholds for the same rows and policy")
    return calibrations[0], seconds


# ---------------------------------------------------------------------------------------------- windows


def _mixture(parts: Sequence[tuple[pd.DataFrame, int]], rng: np.random.Generator) -> pd.DataFrame:
    """`count` rows drawn without replacement from each pool, shuffled together."""
    frames = []
    for pool, count in parts:
        if count > len(pool):
            raise ValueError(f"a window needs {count} rows of a pool of {len(pool)}; enlarge the pool")
        if count:
            frames.append(pool.iloc[rng.choice(len(pool), count, replace=False)])
    frame = pd.concat(frames, ignore_index=True)
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def _share_cell(kind: str, share: float, stable: pd.DataFrame, shifted: pd.DataFrame) -> Cell:
    def draw(size: int, rng: np.random.Generator) -> pd.DataFrame:
        count = round(share * size)
        return _mixture([(stable, size - count), (shifted, count)], rng)

    return Cell(kind, share, draw)


def _domain_mix_cell(stable: pd.DataFrame) -> Cell:
    by_domain = {domain: rows for domain, rows in stable.groupby("domain")}
    domains = sorted(by_domain)

    def draw(size: int, rng: np.random.Generator) -> pd.DataFrame:
        heavy = set(rng.choice(len(domains), DOMAIN_MIX_DOMAINS, replace=False).tolist())
        light = (1 - DOMAIN_MIX_SHARE) / (len(domains) - DOMAIN_MIX_DOMAINS)
        weights = [DOMAIN_MIX_SHARE / DOMAIN_MIX_DOMAINS if i in heavy else light for i in range(len(domains))]
        counts = rng.multinomial(size, weights)
        return _mixture([(by_domain[d], int(c)) for d, c in zip(domains, counts, strict=True)], rng)

    return Cell("domain_mix", DOMAIN_MIX_SHARE, draw)


def _binomial_cell(kind: str, severity: float, stable: pd.DataFrame, shifted: pd.DataFrame) -> Cell:
    def draw(size: int, rng: np.random.Generator) -> pd.DataFrame:
        count = int(rng.binomial(size, severity))
        return _mixture([(stable, size - count), (shifted, count)], rng)

    return Cell(kind, severity, draw)


# ---------------------------------------------------------------------------------------------- data sets


def clinc_domain(clinc_dir: Path) -> str:
    """The held-out ("new") domain: the alphabetically last one in domains.json (fixed rule, not a result)."""
    return sorted(json.loads((clinc_dir / "domains.json").read_text()))[-1]


def clinc150(options: Options, config: DriftConfig) -> Traffic:
    from modelops.settings import PACKAGE_CONFIG_DIR

    folder = Path(options.clinc_dir)
    if not (folder / "train.csv").is_file():
        raise FileNotFoundError(f"CLINC150 not found at {folder}; pass --clinc-dir <folder with train.csv>")
    new = clinc_domain(folder)
    read = {name: pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
            for name in ("train", "validation", "test", "out_of_scope")}
    key = _digest(f"{new}/{options.clinc_per_intent}/{options.clinc_epochs}",
                  *[(folder / f"{n}.csv").read_bytes() for n in read],
                  (ROOT / "modelops/core/data/curate.py").read_bytes(), (PACKAGE_CONFIG_DIR / "training.yaml").read_bytes())
    cache = _cache("clinc150", key, options)
    known = read["train"][read["train"]["domain"] != new]
    sampled = known.groupby("label", group_keys=False).sample(n=options.clinc_per_intent, random_state=0)
    train = _curated(sampled, "clinc150-train")
    validation = _curated(read["validation"][read["validation"]["domain"] != new], "clinc150-validation")
    adapter, model = _train(cache, train, validation, options.clinc_epochs)
    classifier = _classifier(adapter)
    reference, vocabulary = _reference(cache, classifier, validation, train["text"].tolist())
    test = read["test"]
    stable = _pool(cache, "stable", classifier, lambda: test[test["domain"] != new])
    # The champion knows none of these labels, so every row of the next two pools counts as wrong.
    new_domain = _pool(cache, "new_domain", classifier, lambda: test[test["domain"] == new])
    out_of_scope = _pool(cache, "out_of_scope", classifier, lambda: read["out_of_scope"].query("split == 'test'")
                         .assign(label="oos", domain="oos")[["text", "label", "domain"]])
    calibration, seconds = _calibrate(reference, vocabulary, config, options.calibration_repeats)
    cells = [_share_cell("new_domain", s, stable, new_domain) for s in CLINC_SHARES]
    cells += [_share_cell("out_of_scope", s, stable, out_of_scope) for s in CLINC_SHARES]
    cells.append(_domain_mix_cell(stable))
    correct_reference = reference["predicted_label"].to_numpy() == validation["label"].to_numpy()
    model.update({"held_out_domain": new, "known_domains": int(known["domain"].nunique()),
                  "reference_rows": len(reference), "reference_accuracy": round(float(correct_reference.mean()), 4),
                  "reference_mean_confidence": round(float(reference["confidence"].mean()), 4),
                  "pools": {"stable": len(stable), "new_domain": len(new_domain), "out_of_scope": len(out_of_scope)},
                  "cache_dir": str(cache)})
    return Traffic("clinc150", reference, vocabulary, calibration, seconds, stable, cells, model)


def _changed_rows(name: str, severity: float, rows: int) -> pd.DataFrame:
    """`rows` tickets (text, label) the generator changes under scenario `name` at `severity`."""
    from modelops.core.data.datagen import generate_corpus, generate_scenario

    if name in SEVERITY_INDEPENDENT:
        return generate_scenario(name, rows, seed=SCENARIO_SEED, severity=1.0)[["text", "label"]]
    total = math.ceil(rows / severity * 1.2) + 50
    drifted = generate_scenario(name, total, seed=SCENARIO_SEED, severity=severity)
    plain = generate_corpus(total, seed=SCENARIO_SEED, label_noise=0.03)
    changed = drifted[drifted["text"] != plain["text"]][["text", "label"]]
    if len(changed) < rows:
        raise RuntimeError(f"{name} at {severity}: only {len(changed)} changed rows of {total}")
    return changed.iloc[:rows]


def generator(options: Options, config: DriftConfig) -> Traffic:
    from modelops.core.data.datagen import generate_corpus
    from modelops.settings import PACKAGE_CONFIG_DIR

    data = ROOT / "modelops" / "core" / "data"
    key = _digest(f"{options.generator_epochs}", (data / "datagen.py").read_bytes(), (data / "curate.py").read_bytes(),
                  (PACKAGE_CONFIG_DIR / "training.yaml").read_bytes())
    cache = _cache("generator", key, options)
    curated = _curated(generate_corpus(CORPUS_ROWS, seed=CORPUS_SEED), "generator")
    train, held_out = curated[curated["split"] == "train"], curated[curated["split"] != "train"]
    adapter, model = _train(cache, train, curated[curated["split"] == "validation"], options.generator_epochs)
    classifier = _classifier(adapter)
    reference, vocabulary = _reference(cache, classifier, held_out, train["text"].tolist())
    stable = _pool(cache, f"baseline-{options.generator_pool}", classifier,
                   lambda: generate_corpus(options.generator_pool, seed=BASELINE_SEED)[["text", "label"]])
    calibration, seconds = _calibrate(reference, vocabulary, config, 1)
    cells = []
    for name in SCENARIOS:
        for severity in GENERATOR_SEVERITIES:
            pool_name = f"{name}-{options.scenario_pool}" if name in SEVERITY_INDEPENDENT else \
                f"{name}-{severity}-{options.scenario_pool}"
            shifted = _pool(cache, pool_name, classifier,
                            lambda n=name, s=severity: _changed_rows(n, s, options.scenario_pool))
            cells.append(_binomial_cell(name, severity, stable, shifted))
    correct_reference = reference["predicted_label"].to_numpy() == held_out["label"].to_numpy()
    model.update({"reference_rows": len(reference), "reference_accuracy": round(float(correct_reference.mean()), 4),
                  "reference_mean_confidence": round(float(reference["confidence"].mean()), 4),
                  "pools": {"stable": len(stable), "scenario": options.scenario_pool}, "cache_dir": str(cache)})
    return Traffic("generator", reference, vocabulary, calibration, seconds, stable, cells, model)


# ---------------------------------------------------------------------------------------------- checks


@dataclass
class Outcome:
    """One window: what the check said (None when it was not checked) and what was true."""

    kind: str
    level: float
    size: int
    fired: bool | None
    retrain: bool | None
    severity: str | None
    tests: list[str]  # the tests that fired (drifted columns, estimated_accuracy_drop)
    estimated_accuracy: float
    realised_accuracy: float
    seconds: float | None
    detail: dict[str, Any] = field(default_factory=dict)


class Checker:
    """`check_drift` exactly as the sensor calls it, timed."""

    def __init__(self, traffic: Traffic, config: DriftConfig) -> None:
        self.traffic, self.config = traffic, config

    def __call__(self, window: pd.DataFrame, kind: str, level: float, check: bool = True) -> Outcome:
        from modelops.core.monitoring.drift import check_drift, estimate_accuracy

        realised = float(window["correct"].mean())
        t = self.traffic
        if not check:
            estimate = estimate_accuracy(window["confidence"].to_numpy()) + t.calibration.accuracy_offset
            return Outcome(kind, level, len(window), None, None, None, [], float(np.clip(estimate, 0.0, 1.0)),
                           realised, None)
        started = time.perf_counter()
        result = check_drift(t.reference, window, t.vocabulary, self.config, t.calibration)
        seconds = time.perf_counter() - started
        tests = list(result.drifted_columns) + ([ACCURACY_TEST] if result.accuracy_drop_significant else [])
        detail = {"scores": {c: round(v, 4) for c, v in result.column_scores.items()},
                  "thresholds": {c: round(v, 4) for c, v in result.thresholds.items()},
                  "estimated_accuracy_drop": round(result.estimated_accuracy_reference
                                                   - result.estimated_accuracy_current, 4),
                  "accuracy_drop_band": round(result.accuracy_drop_band, 4)}
        return Outcome(kind, level, len(window), result.drift_detected, result.retrain_recommended, result.severity,
                       tests, result.estimated_accuracy_current, realised, seconds, detail)


def _rng(*seed: int) -> np.random.Generator:
    return np.random.default_rng(list(seed))


def evaluate(traffic: Traffic, config: DriftConfig, options: Options, trials: int, data_id: int) -> list[Outcome]:
    """Every window of one data set: stable windows per size, then each shift cell's trials (2 windows each)."""
    checker = Checker(traffic, config)
    checker(traffic.stable.iloc[:options.sizes[0]], "warm-up", 0.0)  # imports Evidently
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    for s_index, size in enumerate(options.sizes):
        for w in range(options.stable_windows):
            window = _mixture([(traffic.stable, size)], _rng(data_id, 1, s_index, w))
            outcomes.append(checker(window, "stable", 0.0))
        fired = sum(bool(o.fired) for o in outcomes if o.kind == "stable" and o.size == size)
        _say(f"{traffic.name}: {options.stable_windows} stable windows of {size}: {fired} fired "
             f"({time.perf_counter() - started:.0f}s)")
    for c_index, cell in enumerate(traffic.cells):
        for s_index, size in enumerate(options.sizes):
            for trial in range(trials):
                first = checker(cell.draw(size, _rng(data_id, 2, c_index, s_index, trial, 0)), cell.kind, cell.level)
                second_window = cell.draw(size, _rng(data_id, 2, c_index, s_index, trial, 1))
                second = checker(second_window, cell.kind, cell.level, check=not first.fired)
                first.detail["trial"] = second.detail["trial"] = trial
                first.detail["window"], second.detail["window"] = 1, 2
                outcomes += [first, second]
        _say(f"{traffic.name}: {cell.kind} {cell.level:g} done ({time.perf_counter() - started:.0f}s)")
    return outcomes


# ---------------------------------------------------------------------------------------------- figures


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _stable_summary(outcomes: list[Outcome], size: int) -> dict[str, Any]:
    windows = [o for o in outcomes if o.kind == "stable" and o.size == size]
    fired = [o for o in windows if o.fired]
    low, high = wilson(len(fired), len(windows))
    rate = len(fired) / len(windows)
    return {
        "size": size, "windows": len(windows), "fired": len(fired),
        "retrain_recommended": sum(bool(o.retrain) for o in windows),
        "false_alarm_rate": round(rate, 5), "wilson95": [round(low, 5), round(high, 5)],
        "met": rate <= FALSE_ALARM_TARGET and high <= FALSE_ALARM_UPPER_TARGET,
        "severity_counts": dict(Counter(o.severity for o in windows)),
        "test_fired_counts": dict(Counter(t for o in windows for t in o.tests)),
        "realised_accuracy_mean": round(float(np.mean([o.realised_accuracy for o in windows])), 4),
        "estimated_accuracy_mean": round(float(np.mean([o.estimated_accuracy for o in windows])), 4),
        "fired_windows": [{"tests": o.tests, "severity": o.severity, **o.detail} for o in fired],
    }


def _cell_summary(outcomes: list[Outcome], kind: str, level: float, size: int, pool_accuracy: float) -> dict[str, Any]:
    windows = [o for o in outcomes if o.kind == kind and o.level == level and o.size == size]
    first = [o for o in windows if o.detail.get("window") == 1]
    second = {o.detail["trial"]: o for o in windows if o.detail.get("window") == 2}
    within_1 = sum(bool(o.fired) for o in first)
    within_2 = sum(bool(o.fired) or bool(second[o.detail["trial"]].fired) for o in first)
    retrain_2 = sum(bool(o.retrain) or bool(second[o.detail["trial"]].retrain) for o in first)
    realised = float(np.mean([o.realised_accuracy for o in windows]))
    return {
        "kind": kind, "level": level, "size": size, "trials": len(first),
        "detected_within_1": within_1, "detected_within_2": within_2, "retrain_recommended_within_2": retrain_2,
        "detection_rate_within_1": round(within_1 / len(first), 4),
        "detection_rate_within_2": round(within_2 / len(first), 4),
        "realised_accuracy": round(realised, 4),
        "realised_accuracy_drop_points": round(100 * (pool_accuracy - realised), 2),
        "estimated_accuracy": round(float(np.mean([o.estimated_accuracy for o in windows])), 4),
        "first_window_severity_counts": dict(Counter(o.severity for o in first)),
        "first_window_test_fired_counts": dict(Counter(t for o in first for t in o.tests)),
    }


def _mae(outcomes: list[Outcome], kinds: Sequence[str] | None) -> dict[str, Any]:
    chosen = [o for o in outcomes if kinds is None or o.kind in kinds]
    errors = np.array([o.estimated_accuracy - o.realised_accuracy for o in chosen])
    return {"windows": len(chosen), "mae_points": round(100 * float(np.abs(errors).mean()), 3),
            "bias_points": round(100 * float(errors.mean()), 3),
            "p95_abs_error_points": round(100 * float(np.percentile(np.abs(errors), 95)), 3)}


def summarise(traffic: Traffic, outcomes: list[Outcome], trials: int, options: Options) -> dict[str, Any]:
    pool_accuracy = float(traffic.stable["correct"].mean())
    stable = [_stable_summary(outcomes, size) for size in options.sizes]
    cells = [_cell_summary(outcomes, c.kind, c.level, size, pool_accuracy)
             for c in traffic.cells for size in options.sizes]
    material = [c for c in cells if c["realised_accuracy_drop_points"] >= 100 * MATERIAL_DROP]
    found = sum(c["detected_within_2"] for c in material)
    total = sum(c["trials"] for c in material)
    seconds = np.array([o.seconds for o in outcomes if o.seconds is not None])
    all_fired = [o for o in outcomes if o.fired is not None]
    stable_windows = sum(s["windows"] for s in stable)
    stable_fired = sum(s["fired"] for s in stable)
    return {
        "model": traffic.model,
        "stable_pool_accuracy": round(pool_accuracy, 4),
        "calibration": {"window_sizes": traffic.calibration.window_sizes,
                        "pool_rows": traffic.calibration.pool_rows, "test_level": traffic.calibration.test_level,
                        "seconds_per_run": traffic.calibration_seconds,
                        "median_seconds": float(np.median(traffic.calibration_seconds)),
                        "markdown": traffic.calibration.markdown()},
        "stable": stable,
        "stable_all_sizes": {"windows": stable_windows, "fired": stable_fired,
                             "false_alarm_rate": round(stable_fired / stable_windows, 5),
                             "wilson95": [round(v, 5) for v in wilson(stable_fired, stable_windows)]},
        "trials_per_cell": trials,
        "cells": cells,
        "material_cells": {"rule": f"realised accuracy drop >= {100 * MATERIAL_DROP:g} points",
                           "cells": len(material), "trials": total, "detected_within_2": found,
                           "detected_within_1": sum(c["detected_within_1"] for c in material),
                           "detection_rate_within_2": round(found / total, 4) if total else None,
                           "detection_rate_within_1":
                               round(sum(c["detected_within_1"] for c in material) / total, 4) if total else None},
        "all_cells": {"trials": sum(c["trials"] for c in cells),
                      "detected_within_2": sum(c["detected_within_2"] for c in cells),
                      "detected_within_1": sum(c["detected_within_1"] for c in cells)},
        "retrain_equals_drift": all(o.fired == o.retrain for o in all_fired),
        "label_free_accuracy": {"in_scope": _mae(outcomes, IN_SCOPE_KINDS), "all_windows": _mae(outcomes, None),
                                "stable": _mae(outcomes, ("stable",))},
        "check_seconds": {"checks": len(seconds), "median": round(float(np.median(seconds)), 3),
                          "p95": round(float(np.percentile(seconds, 95)), 3), "max": round(float(seconds.max()), 3)},
    }


# ---------------------------------------------------------------------------------------------- main


def run(options: Options) -> dict[str, Any]:
    import torch

    from modelops.core.config_files import load_config
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.settings import PACKAGE_CONFIG_DIR

    torch.set_num_threads(2)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    origin = provenance(SOURCES)
    config = load_config(PACKAGE_CONFIG_DIR / "drift.yaml", DriftConfig)
    data: dict[str, Any] = {}
    for data_id, (build, trials) in enumerate(((clinc150, options.clinc_trials),
                                               (generator, options.generator_trials))):
        setup_started = time.perf_counter()
        traffic = build(options, config)
        setup_seconds = time.perf_counter() - setup_started
        _say(f"{traffic.name}: setup {setup_seconds:.0f}s, calibration {traffic.calibration_seconds}s, sizes "
             f"{traffic.calibration.window_sizes}")
        outcomes = evaluate(traffic, config, options, trials, data_id)
        data[traffic.name] = {"setup_seconds": round(setup_seconds, 1), **summarise(traffic, outcomes, trials, options),
                              "evaluation_seconds": round(time.perf_counter() - setup_started - setup_seconds, 1)}
    return {"options": asdict(options), "provenance": origin, "policy": config.model_dump(),
            "clinc150": data["clinc150"], "generator": data["generator"],
            "total_seconds": round(time.perf_counter() - started, 1),
            "load_average_1m": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
            "targets": {"false_alarm_rate": f"<= {FALSE_ALARM_TARGET:.0%} of stable windows and 95% Wilson upper "
                                            f"<= {FALSE_ALARM_UPPER_TARGET:.0%}, at each window size",
                        "detection": f">= {DETECTION_TARGET:.0%} within {WINDOWS_PER_SHIFT} windows over cells whose "
                                     f"realised accuracy drops by >= {100 * MATERIAL_DROP:g} points",
                        "label_free_accuracy_mae": f"<= {100 * MAE_TARGET:g} accuracy points on in-scope windows",
                        "calibration_seconds": f"< {CALIBRATION_SECONDS_TARGET:g} s on 2 CPU cores"}}


def _false_alarm_rows(name: str, data: dict[str, Any]) -> list[Measurement]:
    rows = []
    for s in data["stable"]:
        rows.append(Measurement(
            f"drift_false_alarm_rate_{name}_{s['size']}", round(100 * s["false_alarm_rate"], 3), "%", None,
            f"<= 1% and Wilson 95% upper <= 2% ({s['fired']}/{s['windows']} stable {s['size']}-row windows fired; "
            f"upper {100 * s['wilson95'][1]:.2f}%)", s["met"]))
    pooled = data["stable_all_sizes"]
    sizes = "+".join(str(s["size"]) for s in data["stable"])
    headline = Measurement(
        f"drift_false_alarm_rate_{name}", round(100 * pooled["false_alarm_rate"], 3), "%", None,
        f"<= 1% and Wilson 95% upper <= 2% at each size ({pooled['fired']}/{pooled['windows']} stable windows of "
        f"{sizes} rows fired)", all(s["met"] for s in data["stable"]))
    return [headline, *rows]


def _detection_row(name: str, data: dict[str, Any]) -> Measurement:
    material = data["material_cells"]
    rate = material["detection_rate_within_2"]
    return Measurement(
        f"drift_detection_within_2_windows_{name}", None if rate is None else round(100 * rate, 2), "%", None,
        f">= 95% of shifts within 2 windows over cells with realised accuracy drop >= 5 points "
        f"({material['detected_within_2']}/{material['trials']} in {material['cells']} cells)",
        None if rate is None else rate >= DETECTION_TARGET)


def measurements(result: dict[str, Any]) -> list[Measurement]:
    clinc, gen = result["clinc150"], result["generator"]
    rows = [*_false_alarm_rows("clinc150", clinc), *_false_alarm_rows("generator", gen),
            _detection_row("clinc150", clinc), _detection_row("generator", gen)]
    for name, data in (("clinc150", clinc), ("generator", gen)):
        rate = data["material_cells"]["detection_rate_within_1"]
        value = None if rate is None else round(100 * rate, 2)
        rows.append(Measurement(f"drift_detection_within_1_window_{name}", value, "%", None,
                                "reported (same cells, first window only)", None))
    in_scope = clinc["label_free_accuracy"]["in_scope"]
    rows.append(Measurement("label_free_accuracy_mae_clinc150", in_scope["mae_points"], "points", None,
                            f"<= 2 accuracy points on in-scope windows ({in_scope['windows']} stable + domain-mix "
                            f"windows; bias {in_scope['bias_points']:+.2f})",
                            in_scope["mae_points"] <= 100 * MAE_TARGET))
    for name, data in (("clinc150", clinc), ("generator", gen)):
        every = data["label_free_accuracy"]["all_windows"]
        rows.append(Measurement(f"label_free_accuracy_mae_{name}_all_windows", every["mae_points"], "points", None,
                                f"reported ({every['windows']} windows; bias {every['bias_points']:+.2f})", None))
    seconds = clinc["calibration"]["median_seconds"]
    rows.append(Measurement("drift_calibration_seconds", round(seconds, 3), "s", None,
                            f"< 30 s on 2 CPU cores (CLINC150 reference, {clinc['calibration']['pool_rows']} rows; "
                            f"median of {len(clinc['calibration']['seconds_per_run'])})",
                            seconds < CALIBRATION_SECONDS_TARGET))
    for name, data in (("clinc150", clinc), ("generator", gen)):
        rows.append(Measurement(f"drift_check_seconds_{name}", data["check_seconds"]["median"], "s", None,
                                f"reported (median of {data['check_seconds']['checks']} checks, reference "
                                f"{data['model']['reference_rows']} rows)", None))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    from bench.machine import write_result

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    defaults = Options()
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: few windows and trials; result goes to bench/results/tmp/")
    parser.add_argument("--stable-windows", type=int, default=defaults.stable_windows)
    parser.add_argument("--clinc-trials", type=int, default=defaults.clinc_trials)
    parser.add_argument("--generator-trials", type=int, default=defaults.generator_trials)
    parser.add_argument("--clinc-per-intent", type=int, default=defaults.clinc_per_intent)
    parser.add_argument("--clinc-epochs", type=int, default=defaults.clinc_epochs)
    parser.add_argument("--generator-epochs", type=int, default=defaults.generator_epochs)
    parser.add_argument("--generator-pool", type=int, default=defaults.generator_pool)
    parser.add_argument("--scenario-pool", type=int, default=defaults.scenario_pool)
    parser.add_argument("--calibration-repeats", type=int, default=defaults.calibration_repeats)
    parser.add_argument("--clinc-dir", default=defaults.clinc_dir)
    parser.add_argument("--no-cache", action="store_true", help="retrain and re-predict instead of reusing the cache")
    args = parser.parse_args(argv)
    options = Options(stable_windows=args.stable_windows, clinc_trials=args.clinc_trials,
                      generator_trials=args.generator_trials, clinc_per_intent=args.clinc_per_intent,
                      clinc_epochs=args.clinc_epochs, generator_epochs=args.generator_epochs,
                      generator_pool=args.generator_pool, scenario_pool=args.scenario_pool,
                      calibration_repeats=args.calibration_repeats, clinc_dir=args.clinc_dir,
                      cache=not args.no_cache)
    if args.quick:
        options = replace(options, quick=True, **QUICK)
    result = run(options)
    write_result("drift_real_data", result, measurements(result), RESULTS / "tmp" if options.quick else RESULTS)


if __name__ == "__main__":
    main()
