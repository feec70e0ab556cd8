"""Generation serving: tokens per second of `modelops serve` answering 8 concurrent clients at POST /generate, against
sequential `generate` calls with the same model (one prompt per call, what a server without batching does).

The model: a Llama built here from a config (4 layers, hidden 256, 8 heads, a byte-level BPE tokenizer of 1,024 tokens
trained on the prompts and responses of the built-in ticket -> JSON task), random weights, with one LoRA adapter
(r=16 on every linear layer of the blocks) saved by modelops's `save_adapter` without training: the forward pass
costs the same trained or not, and greedy decoding makes both arms generate exactly the same tokens for a prompt.
No pretrained causal LM ships with the project; on a GPU, bench/gpu_causal_lm.py measures a real one.

- modelops: exactly what a user runs, `python -m modelops.app.cli serve` in a subprocess for a `task: causal-lm`
  customisation (the adapter registered and promoted to `champion` in its own MLflow SQLite store; the shipped
  causal-lm policies: responses cut at 48 new tokens, prompts at 256 tokens). It micro-batches concurrent requests
  (one `generate` call per micro-batch), computes each prompt's embedding and captures every response to Parquet.
  The client: 8 keep-alive connections (httpx, in this process), each sending its next prompt (`{"prompt": ...}`)
  as soon as the previous answer arrived.
- sequential: `modelops.core.serving.generation.generate` on one prompt at a time, in this process, with the same
  model, adapter and limits (no HTTP, no capture: the baseline does less work).

Prompts: the built-in task's prompts for generated tickets (`generate_corpus`, seed 11), the same list in both arms.
Tokens counted are the response tokens generated (end-of-sequence included). Both arms are warmed up, then 3
repetitions alternate (sequential, modelops, modelops, sequential, ...); median and min-max per arm, ratio of the
medians. Target (issue 24): modelops at concurrency 8 >= 3x the sequential tokens/s.

Usage: python -m bench.generation_serving [--prompts 48] [--repetitions 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.machine import Measurement, provenance, write_result

CONCURRENCY = 8


def build_model(folder: Path, texts: list[str]) -> Path:
    """A 4-layer Llama (random weights) with a byte-level BPE tokenizer trained on `texts`, as a Hugging Face folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=1024, special_tokens=["<pad>", "</s>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>")
    tokenizer.save_pretrained(str(folder))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


def save_untrained_adapter(base_dir: Path, out: Path) -> Path:
    """A LoRA adapter on every linear layer of the blocks, saved as training saves it (not trained)."""
    from peft import LoraConfig, get_peft_model

    from modelops.core.training.base_model import describe_base_model, load_base_model
    from modelops.core.training.train import save_adapter, seed_everything
    from modelops.core.training.training_config import TrainingConfig

    base = describe_base_model(base_dir, "causal-lm")
    config = TrainingConfig.model_validate({"lora": {"r": 16, "alpha": 32, "target_modules": [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}})
    seed_everything(0)
    model = get_peft_model(load_base_model(base), LoraConfig(
        task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules=list(config.lora.target_modules)))
    save_adapter(model, out, [], base, config, {})
    return out


def promote(adapter_dir: Path, home: Path, name: str) -> str:
    """Register the adapter in `home`'s MLflow store (as modelops's settings place it) and make it `champion`."""
    from modelops.core.registry.registry import ModelRegistry

    home.mkdir(parents=True)
    registry = ModelRegistry(f"sqlite:///{home / 'mlflow.db'}", name, home / "mlartifacts")
    with registry.run("train-full", {}) as run_id:
        pass
    version = registry.register_adapter(run_id, adapter_dir, {})
    registry.promote(version, reason="benchmark")
    return version


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(config: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "MODELOPS_CONFIG": str(config), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "modelops.app.cli", "serve", "--port", str(port)],
                               env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"server not ready in 180 s: {log.read_text()[-2000:]}")


async def _serve_all(port: int, prompts: list[str]) -> tuple[int, float, int]:
    """Every prompt through `CONCURRENCY` keep-alive connections; (response tokens, seconds, errors)."""
    import httpx

    queue: asyncio.Queue[str] = asyncio.Queue()
    for prompt in prompts:
        queue.put_nowait(prompt)
    tokens, errors = 0, 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal tokens, errors
        while not queue.empty():
            prompt = queue.get_nowait()
            response = await http.post(f"http://127.0.0.1:{port}/generate", json={"prompt": prompt})
            if response.status_code != 200:
                errors += 1
                continue
            tokens += response.json()["responses"][0]["response_tokens"]

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(CONCURRENCY)))
        return tokens, time.perf_counter() - start, errors


def served_tokens_per_second(port: int, prompts: list[str]) -> tuple[float, int]:
    tokens, seconds, errors = asyncio.run(_serve_all(port, prompts))
    return tokens / seconds, errors


def sequential_tokens_per_second(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int,
                                 max_prompt_tokens: int) -> float:
    from modelops.core.serving.generation import generate

    start = time.perf_counter()
    tokens = sum(generate(model, tokenizer, [p], max_new_tokens, max_prompt_tokens)[0].response_tokens
                 for p in prompts)
    return tokens / (time.perf_counter() - start)


def serve_config(work: Path, base_dir: Path, adapter: Path, name: str) -> Path:
    """A modelops.yaml under `work` for a `task: causal-lm` customisation whose champion is `adapter`."""
    import yaml

    home = work / "home"
    promote(adapter, home, name)
    config = work / "modelops.yaml"
    config.write_text(yaml.safe_dump({"home": str(home), "data_dir": str(work / "data"), "task": "causal-lm",
                                      "base_model_path": str(base_dir), "registered_model_name": name}))
    return config


def compare_arms(work: Path, base_dir: Path, adapter: Path, prompts: list[str], repetitions: int
                 ) -> dict[str, Any]:
    """Both arms on the same model and prompts, with the shipped causal-lm limits: warm-up, then `repetitions`
    alternating runs each; tokens/s per run, medians, their ratio, errors and rows captured by the server."""
    from modelops.core.config_files import load_config
    from modelops.core.evaluation.evaluation_policy import EvaluationPolicy
    from modelops.core.serving.generation import load_causal_lm
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.training.training_config import TrainingConfig
    from modelops.settings import TASK_POLICY_FILES

    files = TASK_POLICY_FILES["causal-lm"]
    max_new_tokens = load_config(files["evaluation_config"], EvaluationPolicy).generation.max_new_tokens
    max_prompt_tokens = load_config(files["training_config"], TrainingConfig).max_length
    config = serve_config(work, base_dir, adapter, "ticket-extractor")
    model, tokenizer = load_causal_lm(describe_base_model(base_dir, "causal-lm"), adapter)
    port = free_port()
    server = start_server(config, port, work / "server.log")
    try:
        sequential_tokens_per_second(model, tokenizer, prompts[:4], max_new_tokens, max_prompt_tokens)  # warm-up
        errors = served_tokens_per_second(port, prompts[:CONCURRENCY * 2])[1]
        served = CONCURRENCY * 2
        runs: dict[str, list[float]] = {"sequential": [], "modelops": []}
        for repetition in range(repetitions):
            order = ["sequential", "modelops"] if repetition % 2 == 0 else ["modelops", "sequential"]
            for arm in order:
                if arm == "sequential":
                    runs[arm].append(sequential_tokens_per_second(model, tokenizer, prompts, max_new_tokens,
                                                                  max_prompt_tokens))
                else:
                    rate, failed = served_tokens_per_second(port, prompts)
                    runs[arm].append(rate)
                    errors, served = errors + failed, served + len(prompts)
    finally:
        server.terminate()
        server.wait(timeout=60)
    captured = sum(len(_rows(p)) for p in (work / "data" / "production").glob("batch-*.parquet"))
    median = {arm: statistics.median(values) for arm, values in runs.items()}
    return {"prompts": len(prompts), "concurrency": CONCURRENCY, "max_new_tokens": max_new_tokens,
            "repetitions": repetitions, "tokens_per_second": runs, "median_tokens_per_second": median,
            "ratio_of_medians": median["modelops"] / median["sequential"], "errors": errors,
            "captured_rows": captured, "answered_rows": served - errors,
            "parameters": sum(p.numel() for p in model.parameters()), "device": str(next(model.parameters()).device)}


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Measurement]]:
    import torch

    from modelops.core.data.datagen import generate_corpus
    from modelops.core.data.instructions import extraction_tasks

    tasks = extraction_tasks(generate_corpus(max(args.prompts, 400), seed=11))
    prompts = tasks["prompt"].head(args.prompts).tolist()
    work = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    base_dir = build_model(work / "base", (tasks["prompt"] + tasks["response"]).tolist())
    adapter = save_untrained_adapter(base_dir, work / "adapter")
    arms = compare_arms(work, base_dir, adapter, prompts, args.repetitions)
    result = {
        "provenance": provenance(["bench/generation_serving.py", "modelops/core/serving/generation.py",
                                 "modelops/service/generation_batcher.py", "modelops/service/batcher.py",
                                 "modelops/service/serving.py"]),
        "model": {"layers": 4, "hidden": 256, "vocab": 1024, "torch_threads": torch.get_num_threads()}, **arms,
    }
    median, ratio = arms["median_tokens_per_second"], arms["ratio_of_medians"]
    measurements = [
        Measurement("generation_serving_c8_vs_sequential", median["modelops"], "tokens/s", median["sequential"],
                    ">= 3x the sequential generate calls' tokens/s (issue 24)", ratio >= 3.0 and arms["errors"] == 0),
    ]
    return result, measurements


def _rows(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(path).column("id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    result, measurements = run(args)
    write_result("generation_serving", result, measurements)


if __name__ == "__main__":
    main()
