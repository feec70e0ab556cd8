"""Batched greedy generation with a causal LM (base + adapter): the responses evaluation scores and the server
answers, each with its token counts and mean token log-probability (a label-free confidence signal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.core.training.base_model import (
    BaseModelInfo,
    load_base_model,
    load_tokenizer,
    require_safetensors_adapter,
)
from modelops.core.training.batching import pad_sequences


class GenerationRequestError(ValueError):
    """The prompts or limits handed to `generate` cannot be served."""


@dataclass(frozen=True)
class Generation:
    """One response, its length in tokens (the end-of-sequence token included when it was generated), the prompt's
    length as the model saw it, and the mean log-probability of the response tokens."""

    text: str
    prompt_tokens: int
    response_tokens: int
    mean_logprob: float
    finished: bool  # ended with the end-of-sequence token (False: cut at max_new_tokens)


def load_causal_lm(base: BaseModelInfo, adapter_dir: Path) -> tuple[Any, Any]:
    """The causal-LM base with a saved adapter (safetensors only), in eval mode, and its tokenizer."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_base_model(base), str(require_safetensors_adapter(adapter_dir)))
    return model.eval(), load_tokenizer(base)


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, max_prompt_tokens: int,
             batch_size: int = 8) -> list[Generation]:
    """Greedy responses to `prompts`, in their order.

    Prompts are encoded as training encodes them (no special tokens; a longer one keeps its last
    `max_prompt_tokens` tokens, nearest the response) and run in left-padded batches of similar length, so a prompt
    gets the same response alone or in a batch.
    """
    import torch

    if max_new_tokens < 1 or max_prompt_tokens < 1 or batch_size < 1:
        raise GenerationRequestError(f"max_new_tokens ({max_new_tokens}), max_prompt_tokens ({max_prompt_tokens}) "
                                     f"and batch_size ({batch_size}) must be at least 1")
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"][-max_prompt_tokens:] for p in prompts]
    if any(not ids for ids in encoded):
        raise GenerationRequestError("every prompt needs at least one token")
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    results: dict[int, Generation] = {}
    device = next(model.parameters()).device
    model.eval()
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        ids, mask = pad_sequences([encoded[i] for i in rows], tokenizer.pad_token_id, left=True)
        with torch.inference_mode():
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                                 max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id, output_logits=True,
                                 return_dict_in_generate=True)
        new = out.sequences[:, ids.shape[1]:].cpu()
        logprobs = torch.stack(out.logits, dim=1).float().log_softmax(-1).cpu()
        chosen = logprobs.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        for row, index in enumerate(rows):
            tokens = new[row].tolist()
            finished = tokenizer.eos_token_id in tokens
            length = tokens.index(tokenizer.eos_token_id) + 1 if finished else len(tokens)
            text = tokenizer.decode(tokens[:length - 1] if finished else tokens, skip_special_tokens=True)
            results[index] = Generation(text.strip(), len(encoded[index]), length,
                                        float(chosen[row, :length].mean()), finished)
    return [results[i] for i in range(len(prompts))]
