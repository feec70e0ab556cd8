"""GPU: causal-LM LoRA fine-tuning of a ~1.1B Llama-style model, modelops's training path vs plain `Trainer` + PEFT.

Random init from a config (hidden 2048, 22 layers, 32 heads, 4 KV heads, intermediate 5632), bf16 weights, sequence
1024, batch 8, LoRA r=16/alpha=32/dropout 0.05 on q_proj+v_proj, lr 2e-4, same data, steps and seed for every
run. Records are instruction -> response pairs (~900 prompt tokens of support tickets, ~150 response tokens); the
loss covers response tokens only in every run.

Runs, in one process on one GPU:
- `baseline`: the documented recipe: `from_pretrained(dtype=bfloat16)`, `get_peft_model`, `Trainer(bf16=True)`,
  labels -100 on the prompt, fixed-length padding.
- `modelops_eager`: `train_causal_lm_adapter` with compilation off (length-grouped batches, response-only LM head,
  fused AdamW, bf16 autocast).
- `modelops`: the same with each transformer block compiled once (`compile_repeated_blocks`), what it does on a
  GPU for runs of at least `compile_min_steps` (400) steps.

Reported per run: tokens/s over the whole run (compilation and warm-up included) and in steady state (after the
first quarter of the steps), model FLOPs utilisation counting 4N FLOPs per token (frozen base: forward plus input
gradients; N = parameter count) against the GPU's dense bf16 peak, peak memory, and the held-out response loss after
training (the same 16 unseen records, the same loss function), which shows whether the runs learned the same.
Tokens counted: non-padding tokens (prompt + response, truncated at 1024), the same for every run.

Usage: python -m bench.gpu_causal_lm [--steps 60] [--out DIR]    (needs a CUDA GPU; exits 0 with a note without one)
       python -m bench.gpu_causal_lm --smoke                     (tiny model on the CPU: checks the code paths only)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.machine import RESULTS, Measurement, write_result
from modelops.core.training.causal_lm import encode_instructions

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
PER_PROMPT = 30  # tickets per instruction: ~870 prompt + ~150 response tokens, about the 1024-token window
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
FULL = {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
        "num_key_value_heads": 4}
SMOKE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2}


def build_base(folder: Path, tokenizer_dir: Path, shape: dict[str, int], device: str) -> int:
    """Save a randomly initialised Llama-style model (bf16 safetensors) with the MiniLM WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tokenizer.eos_token = "[SEP]"
    tokenizer.save_pretrained(str(folder))
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=2048, **shape,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(folder), safe_serialization=True)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    return n_params


def records(n: int, seed: int) -> pd.DataFrame:
    """Long instructions (concatenated tickets) -> a routing answer for every ticket."""
    from modelops.core.data.datagen import generate_corpus

    corpus = generate_corpus(n * PER_PROMPT, seed=seed)
    prompts, responses = [], []
    for i in range(n):
        chunk = corpus.iloc[i * PER_PROMPT : (i + 1) * PER_PROMPT]
        prompts.append("Route each ticket to a queue.\n" + "\n".join(chunk["text"].iloc[:-1]) + "\nLast ticket: "
                       + chunk["text"].iloc[-1] + "\nQueue:")
        responses.append(" " + " ".join(f"ticket {j}: {label}." for j, label in enumerate(chunk["label"])))
    return pd.DataFrame({"prompt": prompts, "response": responses})


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def heldout_loss(model: Any, tokenizer: Any, heldout: pd.DataFrame, max_length: int) -> float:
    """Mean response-token loss on unseen records (bf16 autocast on a GPU), the same function for every run."""
    import torch

    from modelops.core.training.batching import pad_batch
    from modelops.core.training.causal_lm import response_loss

    ids, labels = encode_instructions(tokenizer, heldout, max_length)
    device = next(model.parameters()).device
    model.eval()
    losses = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for i in range(0, len(ids), 4):
            losses.append(response_loss(model, pad_batch(ids[i : i + 4], tokenizer.pad_token_id,
                                                    labels[i : i + 4]).to(device)).item())
    return float(np.mean(losses))


def run_modelops(base_dir: Path, data: pd.DataFrame, heldout: pd.DataFrame, config: Any) -> dict[str, Any]:
    import torch
    from peft import PeftModel

    from modelops.core.training.base_model import describe_base_model, load_base_model, load_tokenizer
    from modelops.core.training.causal_lm import train_causal_lm_adapter

    base = describe_base_model(base_dir, "causal-lm")
    sync()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = train_causal_lm_adapter(data, heldout.iloc[:4], base, config, Path(out) / "adapter")
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None
        dtype = torch.bfloat16 if torch.cuda.is_available() else None
        model = PeftModel.from_pretrained(load_base_model(base, dtype=dtype), str(Path(out) / "adapter"))
        model.to("cuda" if torch.cuda.is_available() else "cpu")
        loss = heldout_loss(model, load_tokenizer(base), heldout, config.max_length)
    # Each history entry holds the cumulative training time (validation excluded) at that step.
    marks = [(int(h["step"]), h["step"] * config.batch_size / h["samples_per_second"]) for h in result.history]
    return {"seconds": seconds, "train_seconds": result.train_seconds, "step_marks": marks,
            "train_losses": [round(h["train_loss"], 4) for h in result.history], "heldout_loss": loss,
            "steps": result.steps, "peak_memory_gb": peak}


def run_baseline(base_dir: Path, data: pd.DataFrame, heldout: pd.DataFrame, config: Any) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    ids, labels = encode_instructions(tokenizer, data, config.max_length)
    rows = []
    for seq, seq_labels in zip(ids, labels, strict=True):
        pad = config.max_length - len(seq)
        rows.append({"input_ids": seq + [tokenizer.pad_token_id] * pad, "attention_mask": [1] * len(seq) + [0] * pad,
                     "labels": seq_labels + [-100] * pad})
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.bfloat16 if cuda else torch.float32)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=config.lora.r, lora_alpha=config.lora.alpha,
                                             lora_dropout=config.lora.dropout,
                                             target_modules=list(config.lora.target_modules)))
    losses: list[float] = []
    marks: list[tuple[int, float]] = []
    evals = config.evaluations_per_epoch

    class Probe(TrainerCallback):
        """Clock (after a device sync) at the same steps the modelops runs report, and the logged losses."""

        def on_train_begin(self, args, state, control, **kwargs):
            sync()
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % (config.max_steps // evals) == 0:
                sync()
                marks.append((state.global_step, time.perf_counter() - self.start))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(round(float(logs["loss"]), 4))

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=config.batch_size,
                                 max_steps=config.max_steps, learning_rate=config.learning_rate,
                                 weight_decay=config.weight_decay, bf16=cuda,
                                 warmup_steps=math.ceil(config.max_steps * config.warmup_ratio),
                                 logging_steps=config.max_steps // evals, save_strategy="no", report_to=[],
                                 seed=config.seed, disable_tqdm=True, dataloader_drop_last=True, use_cpu=not cuda)
        trainer = Trainer(model=model, args=args, train_dataset=rows, callbacks=[Probe()])
        sync()
        start = time.perf_counter()
        trainer.train()
        sync()
        seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 1e9 if cuda else None
    return {"seconds": seconds, "train_seconds": seconds, "step_marks": marks, "train_losses": losses,
            "heldout_loss": heldout_loss(model, tokenizer, heldout, config.max_length), "steps": config.max_steps,
            "model_dtype": str(next(model.parameters()).dtype), "peak_memory_gb": peak}


def add_rates(run: dict[str, Any], tokens_per_step: float, n_params: int, peak_flops: float) -> None:
    """Whole-run and steady-state (first mark to last) tokens/s, and MFU at 4N FLOPs per token."""
    steps = run["steps"]
    run["tokens_per_second"] = tokens_per_step * steps / run["train_seconds"]
    (s0, t0), (s1, t1) = run["step_marks"][0], run["step_marks"][-1]
    run["steady_tokens_per_second"] = tokens_per_step * (s1 - s0) / (t1 - t0)
    for key in ("tokens_per_second", "steady_tokens_per_second"):
        run[key.replace("tokens_per_second", "mfu")] = run[key] * 4 * n_params / peak_flops


def main() -> None:
    import torch

    from modelops.core.training.training_config import TrainingConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU; checks the code paths only")
    parser.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder (default: the MiniLM base's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.smoke:
        print("no CUDA GPU here: bench.gpu_causal_lm skipped (use --smoke to check the code paths on the CPU)")
        return
    if args.tokenizer is None:
        from modelops.settings import default_base_model_path

        args.tokenizer = default_base_model_path()
    steps, max_length, batch = (8, 1024, 2) if args.smoke else (args.steps, 1024, 8)
    config = TrainingConfig.model_validate({
        "epochs": 1, "batch_size": batch, "learning_rate": 2e-4, "max_length": max_length, "max_steps": steps,
        "evaluations_per_epoch": 4, "early_stopping_patience": 10, "warmup_ratio": 0.05,
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}})
    data, heldout = records(steps * batch, seed=0), records(16, seed=1)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        n_params = build_base(Path(folder), args.tokenizer, SMOKE if args.smoke else FULL,
                              "cuda" if torch.cuda.is_available() else "cpu")
        from transformers import AutoTokenizer

        ids, _ = encode_instructions(AutoTokenizer.from_pretrained(folder), data, max_length)
        tokens_per_step = sum(len(x) for x in ids) / steps
        plan = [("baseline_hf_trainer_peft", run_baseline, config),
                ("modelops_eager", run_modelops, config.model_copy(update={"compile_min_steps": 10**9})),
                ("modelops", run_modelops, config.model_copy(update={"compile_min_steps": 0}))]
        for name, run, run_config in plan:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            try:
                runs[name] = run(Path(folder), data, heldout, run_config)
            except Exception as exc:  # noqa: BLE001 - one failing variant must not lose the others' figures
                runs[name] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"{name} failed: {runs[name]['error']}")
            print(name, json.dumps(runs[name], default=str)[:600], flush=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (smoke)"
    peak = next((v for k, v in PEAK_BF16.items() if k in gpu), 1e12)
    for run in runs.values():
        if "error" not in run:
            add_rates(run, tokens_per_step, n_params, peak)
    write_result("gpu_causal_lm_smoke" if args.smoke else "gpu_causal_lm", {
        "gpu": gpu, "torch": torch.__version__, "parameters": n_params, "sequence_length": max_length,
        "batch_size": batch, "steps": steps, "tokens_per_step": tokens_per_step,
        "flops_convention": "4N FLOPs per token (frozen base: forward plus input gradients), N = parameter count",
        "peak_bf16_flops": peak, "runs": runs}, [] if args.smoke else measurements(runs), args.out)
    print(f"{'run':<26}{'tokens/s':>10}{'steady':>10}{'MFU':>7}{'loss':>8}{'peak GB':>9}")
    for name, run in runs.items():
        if "error" not in run:
            print(f"{name:<26}{run['tokens_per_second']:>10.0f}{run['steady_tokens_per_second']:>10.0f}"
                  f"{run['steady_mfu']:>7.1%}{run['heldout_loss']:>8.4f}{run['peak_memory_gb'] or 0:>9.1f}")


def measurements(runs: dict[str, dict[str, Any]]) -> list[Measurement]:
    base, ours = runs.get("baseline_hf_trainer_peft", {}), runs.get("modelops", {})
    if "error" in base or "error" in ours:
        return []
    loss_delta = ours["heldout_loss"] - base["heldout_loss"]
    return [
        Measurement("gpu_tokens_per_second", ours["tokens_per_second"], "tokens/s", base["tokens_per_second"],
                    ">= 2x Trainer + PEFT (whole run, compilation included)",
                    ours["tokens_per_second"] >= 2 * base["tokens_per_second"]),
        Measurement("gpu_steady_tokens_per_second", ours["steady_tokens_per_second"], "tokens/s",
                    base["steady_tokens_per_second"], ">= 2x Trainer + PEFT (steady state)",
                    ours["steady_tokens_per_second"] >= 2 * base["steady_tokens_per_second"]),
        Measurement("gpu_mfu", ours["steady_mfu"], "fraction", base["steady_mfu"], "reported (4N FLOPs/token)", None),
        Measurement("gpu_heldout_loss", ours["heldout_loss"], "nats/token", base["heldout_loss"],
                    "same loss curve: held-out loss within 0.05 of the baseline's", abs(loss_delta) <= 0.05),
    ]


if __name__ == "__main__":
    main()
