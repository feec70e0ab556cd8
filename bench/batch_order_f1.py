"""Why modelops's CLINC150 macro-F1 sits above the tuned Trainer's in `bench.train_throughput`: the batch order.

modelops shuffles its length-grouped batches; the Trainer's length-grouped sampler (`get_length_grouped_indices`)
serves the batches of each chunk from longest to shortest. This trains modelops on the training benchmark's
CLINC150 splits and settings twice per seed, once with its own order and once with the Trainer's (everything else
unchanged), and reports the paired test macro-F1 difference. It explains a figure; nothing in the product is tuned
from it.

Usage: python -m bench.batch_order_f1 [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def trainer_order(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """The Trainer's length-grouped order (transformers' own function, seeded), cut into batches."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator()
    generator.manual_seed(seed)
    order = get_length_grouped_indices(lengths, batch_size, generator=generator)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def main() -> None:
    from bench.machine import Measurement, write_result
    from bench.train_throughput import clinc150_splits, run_modelops
    from modelops.core.training import batching
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.training.training_config import TrainingConfig
    from modelops.settings import default_base_model_path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    splits, base = clinc150_splits(), describe_base_model(default_base_model_path())
    labels = sorted(set(splits[0]["label"]))
    own_order = batching.length_grouped_batches
    runs = []
    for seed in range(args.seeds):
        config = TrainingConfig(epochs=2, early_stopping_patience=3, seed=seed)
        row = {"seed": seed}
        for name, order in (("modelops_order", own_order), ("trainer_order", trainer_order)):
            batching.length_grouped_batches = order
            row[name] = run_modelops(splits, labels, config, base)["test_macro_f1"]
        batching.length_grouped_batches = own_order
        runs.append(row)
        print(row, flush=True)
    differences = [r["modelops_order"] - r["trainer_order"] for r in runs]
    summary = {name: statistics.median(r[name] for r in runs) for name in ("modelops_order", "trainer_order")}
    write_result("batch_order_f1", {"data": "clinc150 (bench.train_throughput splits)", "runs": runs,
                                    "median_macro_f1": summary, "paired_differences": differences},
                 [Measurement("train_macro_f1_batch_order_effect_clinc150", statistics.median(differences), "macro-F1",
                              None, f"reported (median paired difference, modelops order minus the Trainer's, "
                              f"{args.seeds} seeds; medians {summary['modelops_order']:.4f} vs "
                              f"{summary['trainer_order']:.4f})", None)])


if __name__ == "__main__":
    main()
