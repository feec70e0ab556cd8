"""A BERT classifier's last encoder layer computed for the first token only.

A BERT sequence classifier reads a single position of its last layer: the first ([CLS]) token, through the pooler.
The layer's outputs at every other position are computed and thrown away. `first_token_last_layer` makes that layer
compute keys and values for every position (the first token attends to all of them) and its query, attention output
and feed-forward block for the first token alone: the same logits, loss and gradients (in training, the same dropout
at the same rates, from fewer random draws), and in a 6-layer MiniLM about a seventh less compute per training step
(the causal-LM path's counterpart: logits only at response positions). A call that asks for hidden states or
attentions gets the full layer. The module tree, and so every state-dict key, is unchanged; nothing of it is saved
with the adapter. Under gradient checkpointing, or with an attention that takes a 2-d mask, the model is left as it is.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from modelops.core.training.cpu_dropout import ATTENTION

if TYPE_CHECKING:
    import torch

FOUR_D_MASK_ATTENTION = {"eager", "sdpa", ATTENTION}  # implementations taking a (batch, 1, query, key) mask
OUTPUT_FLAGS = ("output_hidden_states", "output_attentions")


def first_token_last_layer(model: Any) -> bool:
    """Have `model`'s last encoder layer compute only the first token, where `model` (or the PEFT model's base) is a
    plain BERT sequence classifier with an attention that takes a 4-d mask; returns whether it did."""
    from transformers import BertForSequenceClassification

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if type(inner) is not BertForSequenceClassification or inner.bert.pooler is None:
        return False
    config = inner.config
    if config.is_decoder or config.add_cross_attention or config.chunk_size_feed_forward:
        return False
    layer = inner.bert.encoder.layer[-1]
    if config._attn_implementation not in FOUR_D_MASK_ATTENTION or layer.gradient_checkpointing:
        return False
    layer.forward = functools.partial(_first_token_forward, layer)
    return True


def _first_token_forward(layer: Any, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         *args: Any, **kwargs: Any) -> torch.Tensor:
    """`BertLayer.forward` for self-attention only, returning the first position: (batch, 1, hidden). The remaining
    keyword arguments (cache, output flags) concern outputs this layer no longer produces."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.bert.modeling_bert import eager_attention_forward

    attention = layer.attention.self
    if any(kwargs.get(flag) or getattr(attention.config, flag) for flag in OUTPUT_FLAGS):  # every position wanted
        return type(layer).forward(layer, hidden_states, attention_mask, *args, **kwargs)
    batch = hidden_states.shape[0]

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, -1, attention.num_attention_heads, attention.attention_head_size).transpose(1, 2)

    first = hidden_states[:, :1]
    mask = attention_mask[:, :, :1] if attention_mask is not None else None  # the first query's row
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
    attended, _ = attend(attention, heads(attention.query(first)), heads(attention.key(hidden_states)),
                         heads(attention.value(hidden_states)), mask,
                         dropout=attention.dropout.p if attention.training else 0.0, scaling=attention.scaling)
    attended = layer.attention.output(attended.reshape(batch, 1, -1), first)
    return layer.output(layer.intermediate(attended), attended)
