"""GPU: a generative customisation's loop on a ~1.1B Llama-style base: training and serving tokens/s.

The base: random weights from the bench.gpu_causal_lm config (hidden 2048, 22 layers, 32 heads, 4 KV heads), bf16,
with the MiniLM WordPiece tokenizer (no pretrained causal LM can be downloaded here; speed does not depend on the
weights). The task: the built-in ticket -> JSON extraction (`extraction_tasks`), as the loop test trains it.

1. training: `train_causal_lm_adapter`, what `lora_adapter` runs for `task: causal-lm`, with the shipped
   training-causal-lm.yaml (LoRA r=16 on every linear layer of the blocks, batch 8, bf16, blocks compiled from 400
   steps) for one epoch of `--records` instructions. Tokens/s = non-padding tokens trained / training seconds
   (validation excluded). Row `gpu_causal_lm_training_tokens_per_second`, reported: the same training path against
   Trainer + PEFT is bench.gpu_causal_lm's `gpu_tokens_per_second`.
2. serving: the trained adapter registered and promoted, `modelops serve` in a subprocess on the same GPU answering
   8 keep-alive clients at POST /generate, against sequential `generate` calls with the same model in this process
   (bench.generation_serving's two arms: warm-up, alternating repetitions, medians). Row
   `gpu_generation_tokens_per_second`, held to the CPU row's target: >= 3x the sequential tokens/s.

Usage: python -m bench.gpu_generation_loop [--records 4000] [--prompts 48] [--repetitions 3]
       python -m bench.gpu_generation_loop --smoke    (tiny model on the CPU: checks the code paths, writes no rows)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from bench.generation_serving import compare_arms
from bench.gpu_causal_lm import FULL, SMOKE, build_base
from bench.machine import RESULTS, Measurement, provenance, write_result


def train(base_dir: Path, records: int, out: Path) -> dict[str, Any]:
    """One epoch of the shipped causal-lm training on `records` extraction instructions; its tokens/s."""
    from modelops.core.config_files import load_config
    from modelops.core.data.datagen import generate_corpus
    from modelops.core.data.instructions import extraction_tasks
    from modelops.core.training.base_model import describe_base_model, load_tokenizer
    from modelops.core.training.causal_lm import (
        encode_instructions,
        train_causal_lm_adapter,
    )
    from modelops.core.training.training_config import TrainingConfig
    from modelops.settings import TASK_POLICY_FILES

    shipped = load_config(TASK_POLICY_FILES["causal-lm"]["training_config"], TrainingConfig)
    config = shipped.model_copy(update={"epochs": 1, "evaluations_per_epoch": 1})  # one validation, at the end
    data = extraction_tasks(generate_corpus(records + 64, seed=5))
    training, validation = data.iloc[:records], data.iloc[records:]
    base = describe_base_model(base_dir, "causal-lm")
    result = train_causal_lm_adapter(training, validation, base, config, out)
    ids, _ = encode_instructions(load_tokenizer(base), training, config.max_length)
    if result.train_samples != len(training):
        raise RuntimeError(f"trained {result.train_samples} of {len(training)} records: the token count would be off")
    lengths = sorted(len(x) for x in ids)
    tokens = sum(lengths)
    return {"records": records, "steps": result.steps, "batch_size": config.batch_size,
            "compiled": result.steps >= config.compile_min_steps, "train_seconds": result.train_seconds,
            "tokens": tokens, "tokens_per_second": tokens / result.train_seconds,
            "median_record_tokens": lengths[len(lengths) // 2], "validation_loss": -result.best_score}


def main() -> None:
    import torch

    from modelops.core.data.datagen import generate_corpus
    from modelops.core.data.instructions import extraction_tasks
    from modelops.settings import default_base_model_path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU; checks the code paths only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        print("no CUDA GPU here: bench.gpu_generation_loop skipped (use --smoke to check the code paths on the CPU)")
        return
    records, prompt_count, repetitions = (32, 8, 1) if args.smoke else (args.records, args.prompts, args.repetitions)
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-generation-"))
    parameters = build_base(work / "base", default_base_model_path(), SMOKE if args.smoke else FULL,
                            "cuda" if cuda else "cpu")
    training = train(work / "base", records, work / "adapter")
    print("training", training, flush=True)
    prompts = extraction_tasks(generate_corpus(prompt_count, seed=11))["prompt"].tolist()
    arms = compare_arms(work, work / "base", work / "adapter", prompts, repetitions)
    print("serving", arms, flush=True)
    median, ratio = arms["median_tokens_per_second"], arms["ratio_of_medians"]
    result = {"provenance": provenance(["bench/gpu_generation_loop.py", "bench/generation_serving.py",
                                        "modelops/core/training/causal_lm.py", "modelops/core/serving/generation.py",
                                        "modelops/service/generation_batcher.py"]),
              "gpu": torch.cuda.get_device_name(0) if cuda else "cpu (smoke)", "torch": torch.__version__,
              "base_parameters": parameters, "training": training, "serving": arms}
    measurements = [
        Measurement("gpu_causal_lm_training_tokens_per_second", training["tokens_per_second"], "tokens/s", None,
                    "reported (Trainer + PEFT comparison: gpu_tokens_per_second)", None),
        Measurement("gpu_generation_tokens_per_second", median["modelops"], "tokens/s", median["sequential"],
                    ">= 3x the sequential generate calls' tokens/s at concurrency 8",
                    ratio >= 3.0 and arms["errors"] == 0),
    ]
    write_result("gpu_generation_loop_smoke" if args.smoke else "gpu_generation_loop", result,
                 [] if args.smoke else measurements, args.out)


if __name__ == "__main__":
    main()
