"""Training throughput: modelops's LoRA training path vs a plain Hugging Face `Trainer` + PEFT LoRA run.

Same process, same data (the default generated corpus, curated), same base (all-MiniLM-L6-v2), same LoRA shape
(r=16, alpha=32, dropout 0.05 on query/value, classifier + pooler trained), batch 32, max length 64, learning rate,
warm-up, weight decay, epochs and seed. The baseline is the standard recipe: tokenise with truncation,
`DataCollatorWithPadding`, evaluation once per epoch. Reported: samples/s over the whole `train` call (including
per-epoch validation) and macro-F1 on the test split for both, and their ratio.

Usage: python -m bench.train_throughput [--rows 3000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.machine import Measurement

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _data(rows: int):
    from modelops.core.curate import curate
    from modelops.core.datagen import generate_corpus

    curated, _ = curate(generate_corpus(rows, seed=0).assign(source="generator"))
    return (curated[curated["split"] == s].reset_index(drop=True) for s in ("train", "validation", "test"))


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


def run_baseline(train, validation, test, labels: list[str], config, base) -> dict[str, float]:
    """Plain `Trainer` + PEFT: the recipe from the Hugging Face / PEFT docs."""
    from peft import LoraConfig, get_peft_model
    from sklearn.metrics import f1_score
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from modelops.core.base_model import load_base_model, load_tokenizer
    from modelops.core.train import _head_modules, seed_everything

    seed_everything(config.seed)
    tokenizer = load_tokenizer(base)
    model = load_base_model(base, num_labels=len(labels))
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=config.lora.r, lora_alpha=config.lora.alpha,
                                             lora_dropout=config.lora.dropout,
                                             target_modules=list(config.lora.target_modules),
                                             modules_to_save=_head_modules(model)))
    ids = {name: i for i, name in enumerate(labels)}

    def dataset(frame) -> list[dict]:
        encoded = tokenizer(frame["text"].tolist(), truncation=True, max_length=config.max_length)
        return [{"input_ids": i, "attention_mask": m, "labels": ids[y]}
                for i, m, y in zip(encoded["input_ids"], encoded["attention_mask"], frame["label"], strict=True)]

    def metrics(prediction) -> dict[str, float]:
        return {"macro_f1": f1_score(prediction.label_ids, np.argmax(prediction.predictions, -1), average="macro")}

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=128,
            num_train_epochs=config.epochs, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
            warmup_steps=config.warmup_ratio, eval_strategy="epoch", save_strategy="no", logging_strategy="epoch",
            report_to=[], seed=config.seed, use_cpu=True, disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=dataset(train), eval_dataset=dataset(validation),
                          data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=metrics)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    f1 = _macro_f1(model, tokenizer, test["text"].tolist(), [ids[x] for x in test["label"]])
    return {"seconds": seconds, "samples_per_second": len(train) * config.epochs / seconds, "test_macro_f1": f1}


def run_modelops(train, validation, test, labels: list[str], config, base) -> dict[str, float]:
    from modelops.core.predictor import AdapterClassifier
    from modelops.core.train import train_classifier_adapter

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = train_classifier_adapter(train, validation, base, config, Path(out) / "adapter")
        seconds = time.perf_counter() - start
        classifier = AdapterClassifier(base, result.adapter_dir)
        f1 = _macro_f1(classifier.model, classifier.tokenizer, test["text"].tolist(),
                       [labels.index(x) for x in test["label"]])
    return {"seconds": seconds, "samples_per_second": result.train_samples / seconds, "test_macro_f1": f1,
            "steps": result.steps}


def main() -> None:
    from bench.machine import write_result
    from modelops.core.base_model import describe_base_model
    from modelops.core.train import TrainingConfig
    from modelops.settings import default_base_model_path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    train, validation, test = _data(args.rows)
    labels = sorted(set(train["label"]))
    # No early stopping: both runs do exactly `epochs` epochs.
    config = TrainingConfig(epochs=args.epochs, early_stopping_patience=args.epochs + 1)
    base = describe_base_model(default_base_model_path())
    baseline = run_baseline(train, validation, test, labels, config, base)
    modelops = run_modelops(train, validation, test, labels, config, base)
    write_result("train_throughput", {
        "data": {"rows": args.rows, "train": len(train), "validation": len(validation), "test": len(test),
                 "labels": len(labels)},
        "config": config.to_params(),
        "baseline_hf_trainer_peft": baseline,
        "modelops": modelops,
        "throughput_ratio": modelops["samples_per_second"] / baseline["samples_per_second"],
        "macro_f1_delta": modelops["test_macro_f1"] - baseline["test_macro_f1"],
        "target": "throughput_ratio >= 1.5 with macro_f1_delta >= 0",
    }, measurements(baseline, modelops))


def measurements(baseline: dict, modelops: dict) -> list[Measurement]:
    return [
        Measurement("train_throughput_samples_per_second", modelops["samples_per_second"], "samples/s",
                    baseline["samples_per_second"], ">= 1.5x HF Trainer + PEFT",
                    modelops["samples_per_second"] >= 1.5 * baseline["samples_per_second"]),
        Measurement("train_throughput_test_macro_f1", modelops["test_macro_f1"], "macro-F1",
                    baseline["test_macro_f1"], "not lower than HF Trainer + PEFT",
                    modelops["test_macro_f1"] >= baseline["test_macro_f1"]),
    ]


if __name__ == "__main__":
    main()
