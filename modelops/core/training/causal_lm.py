"""Instruction -> response LoRA fine-tuning of a causal LM (generative customisations); the loss covers response
tokens only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelops.core.training.base_model import BaseModelInfo, load_base_model, load_tokenizer
from modelops.core.training.batching import Batch, epoch_schedule, iterate_batches
from modelops.core.training.distributed import world
from modelops.core.training.train import (
    ProgressCallback,
    TrainingConfigError,
    TrainingResult,
    fit_adapter,
    peft_model,
    save_adapter,
    seed_everything,
    training_device,
)
from modelops.core.training.training_config import TrainingConfig

if TYPE_CHECKING:
    import torch


def train_causal_lm_adapter(
    records: pd.DataFrame,
    validation: pd.DataFrame,
    base: BaseModelInfo,
    config: TrainingConfig,
    output_dir: Path,
    on_progress: ProgressCallback | None = None,
    init_adapter: Path | None = None,
) -> TrainingResult:
    """Instruction -> response LoRA fine-tuning of a causal LM; the loss covers response tokens only. With
    `init_adapter` (an adapter trained on this base) training continues from it: a warm start."""
    import torch

    if base.task_type != "causal-lm":
        raise TrainingConfigError(f"Base {base.name} is configured as {base.task_type}; use train_classifier_adapter.")
    for frame, name in ((records, "training"), (validation, "validation")):
        missing = {"prompt", "response"} - set(frame.columns)
        if missing:
            raise TrainingConfigError(f"The {name} records lack columns {sorted(missing)}; need prompt,response.")
    seed_everything(config.seed)
    tokenizer = load_tokenizer(base)
    device = training_device()
    # On a GPU the frozen base is held in bf16: half the memory and no per-step weight casts under autocast.
    dtype = torch.bfloat16 if device.type == "cuda" else None
    model = peft_model(load_base_model(base, dtype=dtype), config, "CAUSAL_LM", init_adapter).to(device)

    train_ids, train_targets = encode_instructions(tokenizer, records, config.max_length)
    val_ids, val_targets = encode_instructions(tokenizer, validation, config.max_length)
    epoch_batches, steps_per_epoch = epoch_schedule(train_ids, train_targets, tokenizer.pad_token_id, config)

    def validate() -> dict[str, float]:
        model.eval()
        losses = []
        size = config.batch_size
        order = [list(range(i, min(i + size, len(val_ids)))) for i in range(0, len(val_ids), size)]
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            for batch in iterate_batches(val_ids, val_targets, tokenizer.pad_token_id, order):
                losses.append(response_loss(model, batch.to(device)).item())
        loss = float(np.mean(losses))
        return {"val_loss": loss, "neg_val_loss": -loss}

    best, best_step, steps, samples, stopped, history, seconds = fit_adapter(
        model, epoch_batches, steps_per_epoch, validate, "neg_val_loss", config, on_progress, response_loss
    )
    output_dir = Path(output_dir)
    if world()[0] == 0:
        save_adapter(model, output_dir, [], base, config, {"best_val_loss": -best})
    return TrainingResult(output_dir, [], best, best_step, steps, samples, seconds, samples / max(seconds, 1e-9),
                          stopped, 1.0, history)


def encode_instructions(tokenizer: Any, frame: pd.DataFrame,
                        max_length: int) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of prompt + response + EOS and labels that are -100 on the prompt.

    Too long a pair keeps its response (at most half the window) and the end of the prompt, nearest the response,
    so no training example is left without tokens to learn from.
    """
    ids, labels = [], []
    for prompt, response in zip(frame["prompt"], frame["response"], strict=True):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if len(p) + len(r) > max_length:
            r = r[: max(max_length // 2, max_length - len(p))]
            p = p[len(p) - (max_length - len(r)):]
        ids.append(p + r)
        labels.append([-100] * len(p) + r)
    return ids, labels


def response_loss(model: Any, batch: Batch) -> torch.Tensor:
    """Next-token cross-entropy on response tokens only, projecting only those positions through the LM head.

    Equal to the model's own loss with prompt labels set to -100, without computing vocabulary logits for the
    (usually much longer) prompt.
    """
    import torch

    causal_lm = model.get_base_model()
    hidden = causal_lm.get_decoder()(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                    use_cache=False).last_hidden_state  # a KV cache only costs memory here
    targets = batch.labels[:, 1:]
    keep = targets != -100
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
    return torch.nn.functional.cross_entropy(logits, targets[keep])
