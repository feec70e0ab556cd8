"""Training throughput: modelops's LoRA training path vs a tuned Hugging Face `Trainer` + PEFT LoRA run.

Two data sets: the default generated corpus (curated) and real text, CLINC150 (all 150 intents, 15 training,
5 validation and 30 test examples each, taken in file order; sized for a 2-core CPU). Same base (all-MiniLM-L6-v2),
LoRA shape (r=16, alpha=32, dropout 0.05 on query/value, classifier + pooler trained), batch 32, max length 64,
learning rate, warm-up ratio, weight decay, epochs, seed and precision for both: where the CPU computes bf16 natively
(AVX512-BF16 or AMX) modelops trains under bf16 autocast, and so does the baseline (`bf16=True`); elsewhere both fp32.

The baseline is what a strong user configures: length-grouped batches (`group_by_length=True`, spelled
`train_sampling_strategy="group_by_length"` in transformers 5) and
`DataCollatorWithPadding(pad_to_multiple_of=8)`, validation once per epoch and the best validation checkpoint
restored at the end (`load_best_model_at_end`), as modelops does. Both clocks cover the same work: tokenizer and
model load, tokenisation, training with per-epoch validation, keeping the best state, and writing the adapter.
No early stopping: both run exactly `epochs` epochs. Both first run once, untimed, on two rows of every label
(warm file cache, imports and kernels). Repetition i runs both with seed i, alternating which goes first;
throughput and test macro-F1 are the medians over repetitions, the ratio is of the medians. One difference is
modelops's own choice: on a CPU it pads each batch to its longest text, where the baseline keeps the multiple of 8
named as its configuration (bench/README.md gives the padding each way).

Usage: python -m bench.train_throughput [--rows 3000] [--epochs 2] [--repetitions 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.machine import CLINC_DIR, Measurement

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

CLINC_PER_INTENT = {"train": 15, "validation": 5, "test": 30}
THROUGHPUT_TARGET, F1_TOLERANCE = 1.5, 0.005

Splits = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


def generator_splits(rows: int) -> Splits:
    from modelops.core.data.curate import curate
    from modelops.core.data.datagen import generate_corpus

    curated, _ = curate(generate_corpus(rows, seed=0).assign(source="generator"))
    return tuple(curated[curated["split"] == s].reset_index(drop=True) for s in ("train", "validation", "test"))


def clinc150_splits(folder: Path = CLINC_DIR) -> Splits:
    """The first n examples of every intent in each of CLINC150's own splits (n from CLINC_PER_INTENT)."""
    if not folder.is_dir():
        raise SystemExit(f"CLINC150 not found at {folder}; see ../shared/datasets/clinc150/README")
    return tuple(pd.read_csv(folder / f"{split}.csv").groupby("label", sort=False).head(n)[["text", "label"]]
                 .reset_index(drop=True) for split, n in CLINC_PER_INTENT.items())


def _macro_f1(model, tokenizer, texts: list[str], labels: list[int]) -> float:
    import torch
    from sklearn.metrics import f1_score

    model.eval()
    predictions = []
    with torch.inference_mode():
        for i in range(0, len(texts), 64):
            enc = tokenizer(texts[i : i + 64], truncation=True, max_length=64, padding=True, return_tensors="pt")
            predictions += model(**enc).logits.argmax(-1).tolist()
    return float(f1_score(labels, predictions, average="macro"))


def run_baseline(splits: Splits, labels: list[str], config, base) -> dict[str, float]:
    """Tuned `Trainer` + PEFT (length-grouped batches, padding to a multiple of 8, best checkpoint restored)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from sklearn.metrics import f1_score
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from modelops.core.training.base_model import load_base_model, load_tokenizer
    from modelops.core.training.train import _head_modules, seed_everything, uses_bf16

    train, validation, test = splits
    ids = {name: i for i, name in enumerate(labels)}

    def metrics(prediction) -> dict[str, float]:
        return {"macro_f1": f1_score(prediction.label_ids, np.argmax(prediction.predictions, -1), average="macro")}

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        seed_everything(config.seed)
        tokenizer = load_tokenizer(base)
        model = load_base_model(base, num_labels=len(labels))
        model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=config.lora.r, lora_alpha=config.lora.alpha,
                                                 lora_dropout=config.lora.dropout,
                                                 target_modules=list(config.lora.target_modules),
                                                 modules_to_save=_head_modules(model)))

        def dataset(frame: pd.DataFrame) -> list[dict]:
            encoded = tokenizer(frame["text"].tolist(), truncation=True, max_length=config.max_length)
            return [{"input_ids": i, "attention_mask": m, "labels": ids[y]}
                    for i, m, y in zip(encoded["input_ids"], encoded["attention_mask"], frame["label"], strict=True)]

        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=128,
            num_train_epochs=config.epochs, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
            warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is the ratio of all steps
            train_sampling_strategy="group_by_length",  # transformers 5's spelling of group_by_length=True
            eval_strategy="epoch", save_strategy="epoch",
            save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="macro_f1",
            logging_strategy="epoch", report_to=[], seed=config.seed, use_cpu=True, disable_tqdm=True,
            bf16=uses_bf16(torch.device("cpu"), config.mixed_precision),
        )
        trainer = Trainer(model=model, args=args, train_dataset=dataset(train), eval_dataset=dataset(validation),
                          data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
                          compute_metrics=metrics)
        trainer.train()
        model.save_pretrained(Path(out) / "adapter")
        seconds = time.perf_counter() - start
    f1 = _macro_f1(model, tokenizer, test["text"].tolist(), [ids[x] for x in test["label"]])
    return {"seconds": seconds, "samples_per_second": len(train) * config.epochs / seconds, "test_macro_f1": f1}


def run_modelops(splits: Splits, labels: list[str], config, base) -> dict[str, float]:
    from modelops.core.serving.predictor import AdapterClassifier
    from modelops.core.training.train import train_classifier_adapter

    train, validation, test = splits
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = train_classifier_adapter(train, validation, base, config, Path(out) / "adapter")
        seconds = time.perf_counter() - start
        classifier = AdapterClassifier(base, result.adapter_dir)
        f1 = _macro_f1(classifier.model, classifier.tokenizer, test["text"].tolist(),
                       [labels.index(x) for x in test["label"]])
    return {"seconds": seconds, "samples_per_second": result.train_samples / seconds, "test_macro_f1": f1,
            "steps": result.steps}


def _spread(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    values = [run[key] for run in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def compare(name: str, splits: Splits, config, base, repetitions: int) -> dict[str, object]:
    """`repetitions` alternating pairs (seed = repetition); medians and min-max of both systems."""
    labels = sorted(set(splits[0]["label"]))
    warm_up = tuple(split.groupby("label").head(2) for split in splits)  # every label, two rows each
    for system in (run_baseline, run_modelops):  # untimed: files, imports and kernels warm for both
        system(warm_up, labels, config.model_copy(update={"epochs": 1}), base)
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "modelops": []}
    for repetition in range(repetitions):
        seeded = config.model_copy(update={"seed": repetition})
        order = ("baseline", "modelops") if repetition % 2 == 0 else ("modelops", "baseline")
        for system in order:
            run = (run_baseline if system == "baseline" else run_modelops)(splits, labels, seeded, base)
            runs[system].append({**run, "seed": repetition})
            print(f"{name} rep {repetition} {system}: {run['samples_per_second']:.1f} samples/s, "
                  f"macro-F1 {run['test_macro_f1']:.4f}", flush=True)
    summary = {system: {"runs": rows, "samples_per_second": _spread(rows, "samples_per_second"),
                        "test_macro_f1": _spread(rows, "test_macro_f1")} for system, rows in runs.items()}
    ours, theirs = summary["modelops"], summary["baseline"]
    return {"data": {"train": len(splits[0]), "validation": len(splits[1]), "test": len(splits[2]),
                     "labels": len(labels)},
            "baseline_tuned_trainer_peft": theirs, "modelops": ours,
            "throughput_ratio": ours["samples_per_second"]["median"] / theirs["samples_per_second"]["median"],
            "macro_f1_delta": ours["test_macro_f1"]["median"] - theirs["test_macro_f1"]["median"]}


def measurements(name: str, result: dict) -> list[Measurement]:
    ours, theirs = result["modelops"], result["baseline_tuned_trainer_peft"]
    speed, baseline_speed = ours["samples_per_second"]["median"], theirs["samples_per_second"]["median"]
    delta = result["macro_f1_delta"]
    return [
        Measurement(f"train_throughput_vs_tuned_trainer_{name}", speed, "samples/s", baseline_speed,
                    f">= {THROUGHPUT_TARGET}x tuned Trainer + PEFT (median of {len(ours['runs'])})",
                    speed >= THROUGHPUT_TARGET * baseline_speed),
        Measurement(f"train_macro_f1_delta_{name}", delta, "macro-F1", None,
                    f"within {F1_TOLERANCE} of tuned Trainer + PEFT (medians; modelops "
                    f"{ours['test_macro_f1']['median']:.4f}, baseline {theirs['test_macro_f1']['median']:.4f})",
                    abs(delta) <= F1_TOLERANCE),
    ]


def main() -> None:
    import torch

    from bench.machine import write_result
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.training.train import uses_bf16
    from modelops.core.training.training_config import TrainingConfig
    from modelops.settings import default_base_model_path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=3000, help="generated rows before curation")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    config = TrainingConfig(epochs=args.epochs, early_stopping_patience=args.epochs + 1)
    base = describe_base_model(default_base_model_path())
    results = {name: compare(name, splits, config, base, args.repetitions)
               for name, splits in (("generator", generator_splits(args.rows)), ("clinc150", clinc150_splits()))}
    precision = "bf16 autocast" if uses_bf16(torch.device("cpu"), config.mixed_precision) else "fp32"
    write_result("train_throughput", {"config": config.to_params(), "precision": precision,
                                      "repetitions": args.repetitions,
                                      "generator_rows": args.rows, "clinc150_per_intent": CLINC_PER_INTENT,
                                      **results},
                 [m for name, result in results.items() for m in measurements(name, result)])


if __name__ == "__main__":
    main()
