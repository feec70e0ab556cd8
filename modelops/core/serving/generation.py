"""Batched greedy generation with a causal LM (base + adapter): the responses evaluation scores and the server
answers, each with its token counts and mean token log-probability (a label-free confidence signal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.core.training.base_model import (
    BaseModelInfo,
    load_base_model,
    load_tokenizer,
    require_safetensors_adapter,
)
from modelops.core.training.batching import pad_sequences

if TYPE_CHECKING:
    import torch

    from modelops.core.registry.registry import ModelRegistry


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
    embedding: list[float] | None = None  # the prompt's mean input-token embedding, when asked for (`embed`)


def load_causal_lm(base: BaseModelInfo, adapter_dir: Path) -> tuple[Any, Any]:
    """The causal-LM base with a saved adapter (safetensors only), in eval mode, and its tokenizer; on this process's
    GPU in bf16 when there is one (a 7B model answers on a GPU node), else on the CPU in fp32."""
    import torch
    from peft import PeftModel

    from modelops.core.training.train import training_device

    device = training_device()
    dtype = torch.bfloat16 if device.type == "cuda" else None
    model = PeftModel.from_pretrained(load_base_model(base, dtype=dtype), str(require_safetensors_adapter(adapter_dir)))
    return model.to(device).eval(), load_tokenizer(base)


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int | Sequence[int],
             max_prompt_tokens: int, batch_size: int = 8, embed: bool = False) -> list[Generation]:
    """Greedy responses to `prompts`, in their order, each at most `max_new_tokens` tokens long (one limit for all,
    or one per prompt); with `embed`, each with its prompt's embedding.

    Prompts are encoded as training encodes them (no special tokens; a longer one keeps its last
    `max_prompt_tokens` tokens, nearest the response) and run in left-padded batches of similar length, so a prompt
    gets the same response alone or in a batch (greedy decoding: a batch runs to its longest limit and each response
    is cut at its own).
    """
    import torch

    limits = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(limits) != len(prompts) or min(limits, default=1) < 1 or max_prompt_tokens < 1 or batch_size < 1:
        raise GenerationRequestError(f"max_new_tokens ({max_new_tokens}; one per prompt or one for all), "
                                     f"max_prompt_tokens ({max_prompt_tokens}) and batch_size ({batch_size}) must be "
                                     "at least 1")
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
        ids, mask = ids.to(device), mask.to(device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                 max_new_tokens=max(limits[i] for i in rows), eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id, output_logits=True,
                                 return_dict_in_generate=True)
            embeddings = _mean_input_embeddings(model, ids, mask) if embed else None
        new = out.sequences[:, ids.shape[1]:].cpu()
        logprobs = torch.stack(out.logits, dim=1).float().log_softmax(-1).cpu()
        chosen = logprobs.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        for row, index in enumerate(rows):
            tokens = new[row, :limits[index]].tolist()
            finished = tokenizer.eos_token_id in tokens
            length = tokens.index(tokenizer.eos_token_id) + 1 if finished else len(tokens)
            text = tokenizer.decode(tokens[:length - 1] if finished else tokens, skip_special_tokens=True)
            results[index] = Generation(text.strip(), len(encoded[index]), length,
                                        float(chosen[row, :length].mean()), finished,
                                        embeddings[row].tolist() if embeddings is not None else None)
    return [results[i] for i in range(len(prompts))]


def _mean_input_embeddings(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each row's mean input-token embedding over its prompt tokens (padding left out), as float32 on the CPU: a
    prompt embedding for drift checks at the cost of a table look-up, not of another forward pass."""
    vectors = model.get_input_embeddings()(ids).float()
    weights = mask.unsqueeze(-1).float()
    return ((vectors * weights).sum(1) / weights.sum(1).clamp(min=1.0)).cpu()


@dataclass(frozen=True)
class ServedGenerator:
    """A champion causal LM as the server runs it: responses cut at `max_new_tokens` (the evaluation policy's; a
    request may ask for fewer), prompts cut to their last `max_prompt_tokens` tokens (the training max_length), each
    response with its prompt's embedding for capture."""

    model: Any
    tokenizer: Any
    max_new_tokens: int
    max_prompt_tokens: int
    batch_size: int = 16

    def generate(self, prompts: Sequence[str], limits: Sequence[int]) -> list[Generation]:
        return generate(self.model, self.tokenizer, prompts, limits, self.max_prompt_tokens, self.batch_size,
                        embed=True)


def load_served_generator(registry: ModelRegistry, base: BaseModelInfo, cache_dir: Path, max_new_tokens: int,
                          max_prompt_tokens: int) -> tuple[str, ServedGenerator]:
    """The `champion` version of a generative customisation, loaded for serving (its adapter downloaded under
    `cache_dir`); RegistryError when there is none yet."""
    version = registry.champion_version()
    model, tokenizer = load_causal_lm(base, registry.download_adapter(version, cache_dir / f"v{version}"))
    return version, ServedGenerator(model, tokenizer, max_new_tokens, max_prompt_tokens)
