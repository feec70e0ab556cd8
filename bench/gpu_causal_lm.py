"""GPU: causal-LM LoRA fine-tuning of a ~1.1B Llama-style model, modelops's training path vs plain `Trainer` + PEFT.

Random init from a config (hidden 2048, 22 layers, 32 heads, 4 KV heads, intermediate 5632), bf16, sequence 1024,
batch 8, LoRA r=16/alpha=32 on q_proj+v_proj, lr 2e-4, same steps and seed for both. Records are instruction ->
response pairs (~900 prompt tokens of support tickets, ~120 response tokens); the loss covers response tokens only in
both runs. Baseline: the documented recipe (`from_pretrained`, `get_peft_model`, `Trainer(bf16=True)`, labels -100 on
the prompt). Reported: tokens/s (all tokens in the batch), model FLOPs utilisation counting 4N FLOPs per token
(frozen base: forward plus input gradients, N = parameter count) against the GPU's dense bf16 peak, and both runs'
loss values at the same steps.

Usage: python -m bench.gpu_causal_lm [--steps 40]   (needs a CUDA GPU; exits 0 with a note without one)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
PER_PROMPT = 30  # tickets per instruction: ~870 prompt + ~150 response tokens, about the 1024-token window
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def build_base(folder: Path, layers: int) -> int:
    """Save a randomly initialised Llama-style model (bf16 safetensors) with the MiniLM WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from modelops.settings import default_base_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(default_base_model_path()))
    tokenizer.eos_token = "[SEP]"
    tokenizer.save_pretrained(str(folder))
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=2048, intermediate_size=5632,
                         num_hidden_layers=layers, num_attention_heads=32, num_key_value_heads=4,
                         max_position_embeddings=2048, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, dtype="bfloat16")
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(folder), safe_serialization=True)
    return sum(p.numel() for p in model.parameters())


def records(n: int, seed: int) -> pd.DataFrame:
    """Long instructions (concatenated tickets) -> a routing answer with a short explanation."""
    from modelops.core.datagen import generate_corpus

    corpus = generate_corpus(n * PER_PROMPT, seed=seed)
    prompts, responses = [], []
    for i in range(n):
        chunk = corpus.iloc[i * PER_PROMPT : (i + 1) * PER_PROMPT]
        prompts.append("Route each ticket to a queue.\n" + "\n".join(chunk["text"].iloc[:-1]) + "\nLast ticket: "
                       + chunk["text"].iloc[-1] + "\nQueue:")
        responses.append(" " + " ".join(f"ticket {j}: {label}." for j, label in enumerate(chunk["label"])))
    return pd.DataFrame({"prompt": prompts, "response": responses})


def real_tokens(base_dir: Path, data: pd.DataFrame, max_length: int) -> int:
    """Non-padding tokens the runs train on (the same for both)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    lengths = [len(tokenizer(p + r, add_special_tokens=False)["input_ids"]) + 1
               for p, r in zip(data["prompt"], data["response"], strict=True)]
    return int(sum(min(n, max_length) for n in lengths))


def run_modelops(base_dir: Path, data: pd.DataFrame, config) -> dict:
    import torch

    from modelops.core.base_model import describe_base_model
    from modelops.core.train import train_causal_lm_adapter

    base = describe_base_model(base_dir, "causal-lm")
    torch.cuda.synchronize()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = train_causal_lm_adapter(data, data.iloc[:8], base, config, Path(out) / "adapter")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "losses": [round(h["train_loss"], 4) for h in result.history],
            "steps": result.steps, "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9}


def run_baseline(base_dir: Path, data: pd.DataFrame, config) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    rows = []
    for prompt, response in zip(data["prompt"], data["response"], strict=True):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (p + r)[: config.max_length]
        labels = ([-100] * len(p) + r)[: config.max_length]
        pad = config.max_length - len(ids)
        rows.append({"input_ids": ids + [tokenizer.pad_token_id] * pad, "attention_mask": [1] * len(ids) + [0] * pad,
                     "labels": labels + [-100] * pad})
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=config.lora.r, lora_alpha=config.lora.alpha,
                                             lora_dropout=config.lora.dropout,
                                             target_modules=list(config.lora.target_modules)))
    losses: list[float] = []

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if logs and "loss" in logs:
                losses.append(round(float(logs["loss"]), 4))

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=config.batch_size,
                                 max_steps=config.max_steps, learning_rate=config.learning_rate,
                                 weight_decay=config.weight_decay, warmup_steps=config.warmup_ratio, bf16=torch.cuda.is_available(),
                                 logging_steps=config.max_steps // config.evaluations_per_epoch, save_strategy="no",
                                 report_to=[], seed=config.seed, disable_tqdm=True, dataloader_drop_last=True)
        trainer = Trainer(model=model, args=args, train_dataset=rows, callbacks=[Losses()])
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.train()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "losses": losses, "steps": config.max_steps,
            "model_dtype": str(next(model.parameters()).dtype),
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9}


def main() -> None:
    import torch

    from bench.machine import write_result
    from modelops.core.train import TrainingConfig

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--layers", type=int, default=22)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU here: bench.gpu_causal_lm skipped")
        return
    config = TrainingConfig.from_dict({
        "epochs": 1, "batch_size": 8, "learning_rate": 2e-4, "max_length": 1024, "max_steps": args.steps,
        "evaluations_per_epoch": 4, "early_stopping_patience": 10, "warmup_ratio": 0.05,
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}})
    data = records(args.steps * config.batch_size, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        n_params = build_base(Path(folder), args.layers)
        tokens = real_tokens(Path(folder), data, config.max_length)
        baseline = run_baseline(Path(folder), data, config)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        ours = run_modelops(Path(folder), data, config)
    gpu = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16.items() if k in gpu), float("nan"))
    for run in (baseline, ours):
        run["tokens_per_second"] = tokens / run["seconds"]
        run["mfu"] = run["tokens_per_second"] * 4 * n_params / peak
    write_result("gpu_causal_lm", {
        "gpu": gpu, "torch": torch.__version__, "parameters": n_params, "sequence_length": config.max_length,
        "batch_size": config.batch_size, "steps": args.steps, "flops_convention": "4N per token (frozen base)",
        "peak_bf16_flops": peak, "tokens_counted": "non-padding tokens (prompt + response, truncated at 1024)",
        "baseline_hf_trainer_peft": baseline, "modelops": ours,
        "tokens_per_second_ratio": ours["tokens_per_second"] / baseline["tokens_per_second"],
        "target": "ratio >= 2 with the same loss curve", "note": f"mean loss delta {np.mean(ours['losses']) - np.mean(baseline['losses']):+.4f}",
    })


if __name__ == "__main__":
    main()
