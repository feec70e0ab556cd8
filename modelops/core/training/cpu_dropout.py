"""Dropout for CPU training at a fraction of its random-number cost, with the same masks' distribution.

On a CPU, `torch.nn.functional.dropout` draws one Mersenne-Twister number per element (`bernoulli_`): about a third
of a MiniLM LoRA training step. Here every 64-bit random number gives four 16-bit uniform draws, each compared with a
threshold: Bernoulli(1 - p) keep masks (p resolved to 1/65536) for about a quarter of the cost, scaled by 1 / (1 - p)
as usual. `use_cpu_dropout` swaps a model's `nn.Dropout` modules (the base's and LoRA's) for ones that draw their
masks this way, and its attention for transformers' eager formula with such dropout on the attention probabilities.
Same seed, same masks; inference is unchanged (dropout is off outside training).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

ATTENTION = "modelops_cpu_dropout"  # the attention implementation registered with transformers


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A boolean mask of `shape`, each element True with probability 1 - p (to 1/65536), from the global generator."""
    import torch

    n = math.prod(shape)
    bits = torch.randint(-(2**63), 2**63 - 1, (-(-n // 4),), dtype=torch.int64)  # 64 random bits each
    return bits.view(torch.int16)[:n].view(shape) >= -32768 + round(p * 65536)


def drop(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`torch.nn.functional.dropout(x, p, training)` with `keep_mask`'s masks."""
    import torch

    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    return x * (keep_mask(x.shape, p).to(x.dtype) * (1.0 / (1.0 - p)))  # one multiplication each way


def _dropout_module() -> type:
    import torch

    class CpuDropout(torch.nn.Dropout):
        """`nn.Dropout` (same `p`) with `keep_mask`'s masks."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return drop(x, self.p, self.training)

    return CpuDropout


def _attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention (transformers' eager implementation) with `keep_mask`'s dropout on the
    attention probabilities."""
    import torch

    scores = torch.matmul(query, key.transpose(2, 3)) * (query.size(-1) ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = drop(torch.softmax(scores, dim=-1), dropout, module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def use_cpu_dropout(model: Any) -> int:
    """Swap `model`'s dropout modules, and its attention where the architecture takes a registered attention
    function, for `keep_mask` dropout; returns how many dropout modules were swapped."""
    import torch
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import eager_mask

    AttentionInterface.register(ATTENTION, _attention)
    AttentionMaskInterface.register(ATTENTION, eager_mask)  # an additive mask, as the eager attention takes
    cpu_dropout = _dropout_module()
    swapped = 0
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is torch.nn.Dropout:
                setattr(parent, name, cpu_dropout(child.p, child.inplace).train(child.training))
                swapped += 1
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        inner.set_attn_implementation(ATTENTION)
    except (ValueError, AttributeError):  # an architecture without pluggable attention keeps its own
        pass
    return swapped
