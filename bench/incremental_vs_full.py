"""Incremental vs full retraining after drift, per drift scenario and seed: macro-F1 on the drifted traffic,
forgetting, wall time.

Three settings, each with its own champion trained (mode `full`) on its pre-drift data, ingested with
`validate_records` and curated with `curate` as `raw_examples` -> `curated_training_set` do:

- generator: the default corpus (3,000 generated rows) hit by each scenario of
  `modelops.core.data.drift_scenarios.SCENARIOS` (new_product, prior_shift, language_shift, length_shift): one batch
  of drifted traffic (`generate_scenario`, severity 0.8 as in `modelops demo`), whose first 500 tickets got annotator
  labels; the rest is the held-out post-drift traffic;
- CLINC150 (`../shared/datasets/clinc150/`, real queries; 20 training rows per intent, drawn with seed 0):
  `clinc150_new_domain`: the champion knows 9 domains (135 intents), the 10th domain's 15 intents arrive with 20
  labelled rows each, and the post-drift traffic is CLINC150's whole test split (all 150 intents): incremental must
  grow its head by 15 classes and keep the old ones; `clinc150_domain_mix`: the champion knows all 150 intents,
  traffic moves to banking and credit_cards, which get 20 more labelled rows per intent; post-drift traffic is
  their test rows.

The labelled rows join the curated set as feedback (source `feedback:<scenario>`); then, with the product's training
policy (`modelops/config/training.yaml`, loaded like the `lora_adapter` asset loads it; only `mode` and the seed
differ), both retrain modes run through `train_classifier_adapter` from the same champion:

- `full` (baseline): a new adapter from the base on the whole curated train split;
- `incremental`: warm start from the champion adapter (`init_adapter`) on `incremental_training_set`: the curated
  train examples new to the champion (`new_rows`: an unseen text, or one whose label changed) plus a replay sample,
  stratified over the old labels, making up training.yaml's `replay_share` for the drift's severity (and at least
  `replay_per_old_label` rows per old label).

The severity is the one the drift sensor would tag the retrain with: `check_drift` of the drifted traffic (labelled
and held-out rows together, as one window) against the champion's reference and calibration, built from the rows the
`champion` asset uses (its curated validation + test rows, `calibrate_drift` under drift.yaml), with the PyTorch
model where the asset uses the variant chosen for serving (ONNX, held to the PyTorch model's quality). The mode the
product itself would pick for it (retrain.yaml: `full_retrain_severity`) is recorded beside the figures; both modes
run in every scenario.

Full validates on the curated validation split; incremental on `incremental_validation_set`, that split's new rows
plus the same replay share of its old ones, and fits its temperature on the whole split, as the `lora_adapter` asset
does. Measured for each: wall time of the
training call (incremental includes building its new + replay sets; curation and evaluation are shared and not timed),
macro-F1 on the held-out post-drift traffic (curated, minus any id in the training data), and macro-F1 on the
pre-drift curated test split, whose drop against the champion is the forgetting figure, via
`modelops.core.evaluation.evaluate.evaluate` on `AdapterClassifier` probabilities. Seeds 0, 1, 2 (training seed of
champion, full and incremental; the data are the same for every seed); the rows are medians over the seeds, the
ratios of medians. Targets (per scenario): incremental post-drift macro-F1 >= 99% of full's, at most 1 macro-F1
point lost against the champion on the old test split, wall time <= 25% of full's.

Epochs: 3 for every run, set like the `lora_adapter` run config's `epochs` override; every other setting is
training.yaml's (4 epochs there, an upper bound that early stopping rarely shortens). Both modes get the same
epochs, so the time ratio hardly depends on the choice; `--epochs 0` reproduces training.yaml exactly. The other
flags shrink the data for smoke runs.

Usage: python -m bench.incremental_vs_full [--rows 3000] [--labelled 500] [--test-rows 1000] [--severity 0.8]
                                           [--epochs 3] [--scenarios new_product ...] [--clinc ...] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.machine import Measurement

if TYPE_CHECKING:
    import pandas as pd

    from modelops.core.evaluation.evaluate import CostModel
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.core.monitoring.retrain_policy import RetrainPolicy
    from modelops.core.training.base_model import BaseModelInfo
    from modelops.core.training.train import SeenRows
    from modelops.core.training.training_config import TrainingConfig
    from modelops.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

F1_TARGET = 0.99  # incremental post-drift macro-F1 >= 99% of full's
FORGETTING_TARGET = 1.0  # incremental loses at most 1 macro-F1 point against the champion on the old test split
TIME_TARGET = 0.25  # incremental wall time <= 25% of full's
CLINC_SCENARIOS = ("clinc150_new_domain", "clinc150_domain_mix")
DRIFT_SEED = 202  # the seed `modelops demo` uses for its drifted traffic


def _say(message: str) -> None:
    print(f"[incremental_vs_full {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _ingest(frame: pd.DataFrame, source: str, settings: Settings) -> pd.DataFrame:
    """Valid text,label,source rows, as `raw_examples` ingests them (schema validation, quarantine dropped)."""
    from modelops.core.data.schema import validate_records

    return validate_records(frame.to_dict(orient="records"), source, max_chars=settings.max_text_chars).valid


def _split(curated: pd.DataFrame, split: str) -> pd.DataFrame:
    return curated[curated["split"] == split].reset_index(drop=True)


def training_config(settings: Settings, epochs: int | None, replay_per_old_label: int | None = None,
                    replay_share: float | None = None) -> TrainingConfig:
    """The product's training policy file, with the per-run `epochs` override of `LoraAdapterConfig` (0/None: none)
    and, for replay experiments, another `replay_per_old_label` or one `replay_share` for every severity."""
    import yaml

    from modelops.core.training.training_config import TrainingConfig

    values: dict[str, Any] = yaml.safe_load(Path(settings.training_config).read_text()) or {}
    values["mode"] = "full"
    if epochs:
        values["epochs"] = epochs
    if replay_per_old_label is not None:
        values["replay_per_old_label"] = replay_per_old_label
    if replay_share is not None:
        values["replay_share"] = {"moderate": replay_share, "severe": replay_share}
    return TrainingConfig.model_validate(values)


def _score(adapter_dir: Path, base: BaseModelInfo, cost_model: CostModel,
           test_sets: dict[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
    """Macro-F1 and accuracy of one adapter on each labelled test set, via the product's evaluation."""
    from modelops.core.evaluation.evaluate import evaluate
    from modelops.core.serving.predictor import AdapterClassifier

    classifier = AdapterClassifier(base, adapter_dir)
    scores: dict[str, dict[str, Any]] = {}
    if not math.isfinite(classifier.temperature):
        # fit_temperature can return NaN on a barely trained model (seen in 1-epoch smoke runs); NaN probabilities
        # would fail `evaluate`. Macro-F1 and accuracy depend only on the argmax, the same for any temperature > 0.
        _say(f"{adapter_dir.name}: calibration temperature is {classifier.temperature}; scoring with 1.0")
        classifier.temperature = 1.0
        scores["calibration"] = {"nonfinite_temperature": True}
    for name, frame in test_sets.items():
        probs = classifier.predict(frame["text"].tolist()).probabilities
        report = evaluate(frame["label"].tolist(), probs, classifier.label_names, cost_model)
        scores[name] = {"macro_f1": report.macro_f1, "accuracy": report.accuracy, "rows": report.n}
    return scores


def _champion_before(adapter_dir: Path, base: BaseModelInfo, traffic: pd.DataFrame) -> float:
    """The champion's macro-F1 on the drifted traffic before any retrain (sklearn's, over the traffic's labels: a
    label the champion does not know counts as an error on each of its rows)."""
    from sklearn.metrics import f1_score

    from modelops.core.serving.predictor import AdapterClassifier

    predicted = AdapterClassifier(base, adapter_dir).predict(traffic["text"].tolist()).labels
    return float(f1_score(traffic["label"], predicted, average="macro", labels=sorted(set(traffic["label"]))))


def drift_severity(champion_dir: Path, base: BaseModelInfo, pre_curated: pd.DataFrame, window: list[str],
                   drift_config: DriftConfig) -> str:
    """The severity the drift sensor gives `window` (traffic texts) for this champion: `check_drift` against a
    reference and calibration built as the `champion` asset builds them (`curated_reference`)."""
    from modelops.core.monitoring.drift import check_drift
    from modelops.core.monitoring.drift_calibration import calibrate_drift
    from modelops.core.monitoring.reference import build_reference, curated_reference
    from modelops.core.serving.predictor import AdapterClassifier

    classifier = AdapterClassifier(base, champion_dir)
    reference, vocabulary = curated_reference(classifier, pre_curated)
    current, _ = build_reference(classifier, window, [])
    calibration = calibrate_drift(reference, vocabulary, drift_config)
    return check_drift(reference, current, vocabulary, drift_config, calibration).severity


def _train(train: pd.DataFrame, validation: pd.DataFrame, base: BaseModelInfo, config: TrainingConfig,
           out: Path, init_adapter: Path | None = None, seen: SeenRows | None = None,
           severity: str | None = None) -> dict[str, Any]:
    """One `lora_adapter`-style training call, timed (incremental: including its new + replay selection, training
    and validation, for drift of `severity`)."""
    from modelops.core.training.train import (
        incremental_training_set,
        incremental_validation_set,
        new_rows,
        train_classifier_adapter,
    )

    start = time.perf_counter()
    new, calibration = None, None
    if config.mode == "incremental":
        assert seen is not None
        train = incremental_training_set(train, seen, config, severity)
        calibration, validation = validation, incremental_validation_set(validation, seen, config, severity)
        new = int(new_rows(train, seen).sum())
    result = train_classifier_adapter(train, validation, base, config, out, init_adapter, calibration=calibration)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "train_loop_seconds": result.train_seconds, "train_rows": len(train),
            "validation_rows": len(validation),
            "new_rows": new, "replay_rows": None if new is None else len(train) - new,
            "steps": result.steps, "train_samples": result.train_samples, "stopped_early": result.stopped_early,
            "samples_per_second": result.samples_per_second, "best_val_macro_f1": result.best_score,
            "adapter_dir": result.adapter_dir}


@dataclass(frozen=True)
class Policies:
    """The product's drift and retrain policies (drift.yaml, retrain.yaml): the severity a drifted window gets, and
    the mode the product would pick for it."""

    drift: DriftConfig
    retrain: RetrainPolicy


@dataclass(frozen=True)
class Setting:
    """A champion's pre-drift data and the drift scenarios that hit it: per scenario, the labelled drifted rows
    (feedback) and the held-out drifted traffic its post-drift macro-F1 is measured on."""

    raw: pd.DataFrame  # valid text,label,source rows, as raw_examples ingests them
    scenarios: dict[str, tuple[pd.DataFrame, pd.DataFrame]]  # name -> (feedback, held-out traffic)


def generator_setting(args: argparse.Namespace, settings: Settings) -> Setting:
    """The default corpus and the generator's drift scenarios (the demo's drifted traffic, first rows labelled)."""
    from modelops.core.data.datagen import generate_corpus, generate_scenario

    scenarios = {}
    for name in args.scenarios:
        traffic = generate_scenario(name, args.labelled + args.test_rows, seed=DRIFT_SEED, severity=args.severity)
        scenarios[name] = (traffic.iloc[: args.labelled], traffic.iloc[args.labelled :])
    return Setting(_ingest(generate_corpus(args.rows, seed=0), "generated.csv", settings), scenarios)


def clinc_settings(args: argparse.Namespace, settings: Settings) -> dict[str, Setting]:
    """Two real shifts on CLINC150 (`args.clinc_per_intent` training rows per intent, seed 0):

    - new_domain: the champion knows 9 domains (135 intents); the 10th (the last in domains.json, as in
      bench/drift_real_data.py) arrives with `clinc_per_intent` labelled rows per intent; post-drift traffic is the
      whole CLINC150 test split (all 150 intents), so the new intents must be learnt and the old ones kept;
    - domain_mix: the champion knows all 150 intents; traffic moves to two domains (banking, credit_cards), which
      get as many labelled rows again; post-drift traffic is those domains' test rows.
    """
    import pandas as pd

    folder = Path(args.clinc_dir)
    if not folder.is_dir():
        raise SystemExit(f"CLINC150 not found at {folder}; see ../shared/datasets/clinc150/README")
    train = pd.read_csv(folder / "train.csv").sample(frac=1.0, random_state=0)
    test = pd.read_csv(folder / "test.csv")
    n = args.clinc_per_intent
    first, second = train.groupby("label").head(n), train.groupby("label").nth(list(range(n, 2 * n)))
    new = sorted(json.loads((folder / "domains.json").read_text()))[-1]
    mixed = ["banking", "credit_cards"]
    return {
        "clinc150_new_domain": Setting(
            _ingest(first[first["domain"] != new][["text", "label"]], "clinc150/train.csv", settings),
            {"clinc150_new_domain": (first[first["domain"] == new][["text", "label"]], test[["text", "label"]])}),
        "clinc150_domain_mix": Setting(
            _ingest(first[["text", "label"]], "clinc150/train.csv", settings),
            {"clinc150_domain_mix": (second[second["domain"].isin(mixed)][["text", "label"]],
                                     test[test["domain"].isin(mixed)][["text", "label"]])}),
    }


def run_scenario(name: str, feedback: pd.DataFrame, traffic: pd.DataFrame, raw: pd.DataFrame,
                 pre_curated: pd.DataFrame, champion: dict[str, Any], base: BaseModelInfo, config: TrainingConfig,
                 cost_model: CostModel, settings: Settings, policies: Policies, work: Path) -> dict[str, Any]:
    from modelops.core.data.curate import curate
    from modelops.core.monitoring.retrain_policy import retrain_mode
    from modelops.core.training.train import seen_rows

    curated, report = curate(raw, feedback.assign(source=f"feedback:{name}"))
    held_out, _ = curate(_ingest(traffic, "held-out", settings))
    held_out = held_out[~held_out["id"].isin(set(curated["id"]))].reset_index(drop=True)
    train, validation = _split(curated, "train"), _split(curated, "validation")
    test_sets = {"post_drift": held_out, "pre_drift": _split(pre_curated, "test")}
    _say(f"{name} seed {config.seed}: {len(curated)} curated ({report.feedback_rows} labelled drifted rows), "
         f"{len(train)} train, {len(validation)} validation, {len(held_out)} held-out drifted test")
    severity = drift_severity(champion["adapter_dir"], base, pre_curated,
                              [*feedback["text"].tolist(), *traffic["text"].tolist()], policies.drift)
    product_mode = "none" if severity == "none" else retrain_mode(severity, policies.retrain)
    _say(f"{name} seed {config.seed}: drift severity {severity} (the product would run: {product_mode}), replay "
         f"share {config.replay_share.share(None if severity == 'none' else severity):.0%}")

    runs: dict[str, dict[str, Any]] = {}
    for mode in ("full", "incremental"):
        mode_config = config.model_copy(update={"mode": mode})
        incremental = mode == "incremental"
        run = _train(train, validation, base, mode_config, work / name / mode,
                     init_adapter=champion["adapter_dir"] if incremental else None,
                     seen=seen_rows(pre_curated) if incremental else None,
                     severity=None if severity == "none" else severity)
        scores = _score(run.pop("adapter_dir"), base, cost_model, test_sets)
        run.update({f"{test}_{metric}": value for test, values in scores.items() for metric, value in values.items()
                    if metric != "rows"})
        run["forgetting_points"] = 100 * (champion["pre_drift_macro_f1"] - run["pre_drift_macro_f1"])
        runs[mode] = run
        _say(f"{name} {mode}: {run['seconds']:.1f}s on {run['train_rows']} rows, post-drift macro-F1 "
             f"{run['post_drift_macro_f1']:.4f}, pre-drift {run['pre_drift_macro_f1']:.4f} "
             f"({run['forgetting_points']:+.2f} points lost vs champion)")
    full, inc = runs["full"], runs["incremental"]
    return {"seed": config.seed, "drift_severity": severity, "product_mode": product_mode,
            "curated_rows": len(curated), "train_rows": len(train),
            "validation_rows": len(validation), "feedback_rows": report.feedback_rows,
            "post_drift_test_rows": len(held_out), "champion_pre_drift_macro_f1": champion["pre_drift_macro_f1"],
            "champion_post_drift_macro_f1": _champion_before(champion["adapter_dir"], base, held_out),
            "full": full, "incremental": inc,
            "macro_f1_ratio": inc["post_drift_macro_f1"] / full["post_drift_macro_f1"],
            "time_ratio": inc["seconds"] / full["seconds"]}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario over its seeds: the median (and min-max) of each figure the rows use."""
    figures = {"full_post_drift_macro_f1": [r["full"]["post_drift_macro_f1"] for r in runs],
               "incremental_post_drift_macro_f1": [r["incremental"]["post_drift_macro_f1"] for r in runs],
               "forgetting_points": [r["incremental"]["forgetting_points"] for r in runs],
               "full_seconds": [r["full"]["seconds"] for r in runs],
               "incremental_seconds": [r["incremental"]["seconds"] for r in runs],
               "macro_f1_ratio": [r["macro_f1_ratio"] for r in runs], "time_ratio": [r["time_ratio"] for r in runs],
               "champion_post_drift_macro_f1": [r["champion_post_drift_macro_f1"] for r in runs]}
    return {key: {"median": statistics.median(values), "min": min(values), "max": max(values)}
            for key, values in figures.items()}


def measurements(scenarios: dict[str, dict[str, Any]]) -> list[Measurement]:
    """Per scenario, medians over the seeds; ratios are of the medians."""
    rows = []
    for name, result in scenarios.items():
        m = {key: value["median"] for key, value in result["medians"].items()}
        ratio = m["incremental_post_drift_macro_f1"] / m["full_post_drift_macro_f1"]
        rows += [
            Measurement(f"incremental_{name}_macro_f1_vs_full", m["incremental_post_drift_macro_f1"], "macro-F1",
                        m["full_post_drift_macro_f1"], f">= {F1_TARGET:.0%} of full retrain (post-drift traffic)",
                        ratio >= F1_TARGET),
            Measurement(f"incremental_{name}_forgetting_points", m["forgetting_points"], "macro-F1 points", None,
                        f"<= {FORGETTING_TARGET:g} point below the champion on the old test split",
                        m["forgetting_points"] <= FORGETTING_TARGET),
            Measurement(f"incremental_{name}_time_vs_full", m["incremental_seconds"], "s", m["full_seconds"],
                        f"<= {TIME_TARGET:.0%} of full retrain's wall time",
                        m["incremental_seconds"] <= TIME_TARGET * m["full_seconds"]),
        ]
    return rows


def main() -> None:
    from bench.machine import CLINC_DIR, write_result
    from modelops.core.config_files import load_config
    from modelops.core.data.curate import curate
    from modelops.core.data.drift_scenarios import SCENARIOS
    from modelops.core.evaluation.evaluation_policy import CostModel
    from modelops.core.monitoring.drift_config import DriftConfig
    from modelops.core.monitoring.retrain_policy import RetrainPolicy
    from modelops.core.training.base_model import describe_base_model
    from modelops.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000, help="pre-drift corpus (the demo's default)")
    parser.add_argument("--labelled", type=int, default=500, help="drifted tickets with annotator labels")
    parser.add_argument("--test-rows", type=int, default=1000, help="held-out drifted tickets per scenario")
    parser.add_argument("--severity", type=float, default=0.8, help="drift severity (the demo's)")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs of every run (training.yaml: 4; see above); 0 = training.yaml's value")
    parser.add_argument("--scenarios", nargs="*", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--clinc", nargs="*", choices=CLINC_SCENARIOS, default=list(CLINC_SCENARIOS),
                        help="the CLINC150 scenarios to run (none: generator only)")
    parser.add_argument("--clinc-dir", default=str(CLINC_DIR))
    parser.add_argument("--clinc-per-intent", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--replay-per-old-label", type=int, help="override training.yaml's (replay experiments)")
    parser.add_argument("--replay-share", type=float, help="one replay share for every severity (replay experiments)")
    parser.add_argument("--no-write", action="store_true", help="print the result, do not write bench/results")
    args = parser.parse_args()

    started = time.perf_counter()
    settings = load_settings()
    base = describe_base_model(settings.resolved_base_model_path)
    policy_costs = load_config(Path(settings.evaluation_config), CostModel, "cost_model")
    policies = Policies(load_config(Path(settings.drift_config), DriftConfig),
                        load_config(Path(settings.retrain_config), RetrainPolicy))
    plain_costs = CostModel(default_error_cost=1.0)  # CLINC150's intents are not the support labels priced above
    setups = {**({"generator": generator_setting(args, settings)} if args.scenarios else {}),
              **{name: setup for name, setup in (clinc_settings(args, settings) if args.clinc else {}).items()
                 if name in args.clinc}}
    results: dict[str, list[dict[str, Any]]] = {}
    champions: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        for seed in args.seeds:
            config = training_config(settings, args.epochs, args.replay_per_old_label, args.replay_share).model_copy(
                update={"seed": seed})
            for setup_name, setup in setups.items():
                costs = policy_costs if setup_name == "generator" else plain_costs
                pre_curated, _ = curate(setup.raw)
                work = Path(tmp) / f"{setup_name}-{seed}"
                champion = _train(_split(pre_curated, "train"), _split(pre_curated, "validation"), base, config,
                                  work / "champion")
                champion["pre_drift_macro_f1"] = _score(champion["adapter_dir"], base, costs, {
                    "pre_drift": _split(pre_curated, "test")})["pre_drift"]["macro_f1"]
                _say(f"{setup_name} champion seed {seed}: {champion['seconds']:.1f}s, pre-drift test macro-F1 "
                     f"{champion['pre_drift_macro_f1']:.4f}")
                for name, (feedback, traffic) in setup.scenarios.items():
                    results.setdefault(name, []).append(run_scenario(
                        name, feedback, traffic, setup.raw, pre_curated, champion, base, config, costs, settings,
                        policies, work))
                champion.pop("adapter_dir")
                champions.setdefault(setup_name, []).append({"seed": seed, **champion})
    scenarios = {name: {"medians": medians(runs), "runs": runs} for name, runs in results.items()}
    if args.no_write:
        print(json.dumps({name: result["medians"] for name, result in scenarios.items()}, indent=1))
        return
    write_result("incremental_vs_full", {
        "data": {"rows": args.rows, "labelled_drifted": args.labelled, "held_out_drifted": args.test_rows,
                 "severity": args.severity, "drift_seed": DRIFT_SEED, "clinc150_per_intent": args.clinc_per_intent},
        "seeds": args.seeds,
        "config": training_config(settings, args.epochs, args.replay_per_old_label, args.replay_share).to_params(),
        "champions": champions,
        "scenarios": scenarios,
        "target": f"per scenario (medians over the seeds): incremental post-drift macro-F1 >= {F1_TARGET:.0%} of "
                  f"full's, at most {FORGETTING_TARGET:g} point lost on the old test split, at <= {TIME_TARGET:.0%} "
                  "of full's wall time",
        "total_seconds": time.perf_counter() - started,
    }, measurements(scenarios))


if __name__ == "__main__":
    main()
