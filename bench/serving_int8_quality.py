"""Quality of the serving variants: macro-F1 of the int8 and fp32 ONNX graphs next to the PyTorch model they came
from, on trained models, on the generator's test split and on CLINC150's.

Per data set and seed (0, 1, 2): modelops trains an adapter (`train_classifier_adapter`, the shipped training policy,
2 epochs) on the same splits as `bench/train_throughput.py` (generator: 3,000 rows curated; CLINC150: all 150 intents,
the first 15 training / 5 validation / 30 test examples of each), then `choose_serving_variant` exports and
quantises it and evaluates every variant on the test split exactly as the evaluation asset does (shipped serving
policy: at most 0.5 macro-F1 points below PyTorch, no class F1 drop beyond the gate's 0.10). Target: int8 within
0.5 macro-F1 points of fp32 on both data sets, for every seed (the row's value is the median drop, the target is
checked on the largest).

Usage: python -m bench.serving_int8_quality [--seeds 0 1 2] [--epochs 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.machine import Measurement
from bench.train_throughput import clinc150_splits, generator_splits

MAX_DROP = 0.005  # 0.5 macro-F1 points


def one_run(splits, config, base) -> dict[str, object]:
    """Train, then evaluate PyTorch, fp32 ONNX and int8 ONNX on the test split; the variant the policy picks."""
    from modelops.core.evaluation.evaluate import evaluate
    from modelops.core.evaluation.evaluation_policy import CostModel, GateRules, ServingPolicy
    from modelops.core.evaluation.serving_variants import choose_serving_variant
    from modelops.core.serving.predictor import AdapterClassifier
    from modelops.core.training.train import train_classifier_adapter

    train, validation, test = splits
    texts, labels = test["text"].tolist(), test["label"].tolist()
    cost = CostModel(default_error_cost=1.0, correct_cost=0.0)
    with tempfile.TemporaryDirectory() as out:
        result = train_classifier_adapter(train, validation, base, config, Path(out) / "adapter")
        classifier = AdapterClassifier(base, result.adapter_dir)
        reference = evaluate(labels, classifier.predict(texts).probabilities, classifier.label_names, cost)
        started = time.perf_counter()
        choice = choose_serving_variant(classifier, texts, labels, reference, cost, ServingPolicy(), GateRules(),
                                        Path(out) / "variants")
        seconds = time.perf_counter() - started
    f1 = {r.variant: r.report.macro_f1 for r in choice.results if r.report is not None}
    return {"pytorch_macro_f1": reference.macro_f1, **{f"{v}_macro_f1": f for v, f in f1.items()},
            "int8_drop_vs_fp32": f1["onnx-fp32"] - f1["onnx-int8"],
            "fp32_drop_vs_pytorch": reference.macro_f1 - f1["onnx-fp32"],
            "chosen": choice.variant, "reason": choice.reason, "export_and_evaluation_seconds": seconds,
            "checks": {r.variant: [c.__dict__ for c in r.checks] for r in choice.results}}


def main() -> None:
    from bench.machine import write_result
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.training.training_config import TrainingConfig
    from modelops.settings import default_base_model_path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    base = describe_base_model(default_base_model_path())
    results: dict[str, list[dict[str, object]]] = {}
    rows = []
    for name, splits in (("generator", generator_splits(3000)), ("clinc150", clinc150_splits())):
        results[name] = []
        for seed in args.seeds:
            config = TrainingConfig(epochs=args.epochs, early_stopping_patience=args.epochs + 1, seed=seed)
            results[name].append({"seed": seed, **one_run(splits, config, base)})
            print(name, results[name][-1], flush=True)
        drops = [float(r["int8_drop_vs_fp32"]) for r in results[name]]  # type: ignore[arg-type]
        fp32 = statistics.median(float(r["onnx-fp32_macro_f1"]) for r in results[name])  # type: ignore[arg-type]
        rows.append(Measurement(f"serving_int8_macro_f1_drop_{name}", statistics.median(drops), "macro-F1", None,
                                f"<= {MAX_DROP} below fp32 for every seed (largest {max(drops):.4f}; median fp32 "
                                f"macro-F1 {fp32:.4f})", max(drops) <= MAX_DROP))
    write_result("serving_int8_quality", {"seeds": args.seeds, "epochs": args.epochs, "runs": results}, rows)


if __name__ == "__main__":
    main()
