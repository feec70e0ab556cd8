"""The first-token last layer: the same logits, loss and gradients as the full layer on padded and unpadded batches,
under every attention it accepts; the full layer where hidden states are asked for; unchanged state-dict keys; other
architectures and checkpointed layers left as they are."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from modelops.core.training.cpu_dropout import use_cpu_dropout
from modelops.core.training.first_token_layer import first_token_last_layer
from modelops.core.training.train import peft_model
from modelops.core.training.training_config import TrainingConfig


def _tiny_bert(attention: str) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, num_labels=4, attn_implementation=attention)
    model = peft_model(BertForSequenceClassification(config), TrainingConfig(), "SEQ_CLS", None)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # B starts at zero, which would leave every lora_A gradient zero on both sides
            torch.nn.init.normal_(parameter, std=0.1)
    return model


def _logits_loss_and_gradients(model, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor):
    model.eval()
    model.zero_grad()
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    return out.logits.detach(), out.loss.detach(), {
        name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("attention", ["eager", "sdpa", "cpu_dropout"])
def test_first_token_last_layer_gives_the_full_layers_logits_loss_and_gradients_on_padded_batches(attention: str):
    full = _tiny_bert("eager" if attention == "cpu_dropout" else attention)
    if attention == "cpu_dropout":
        use_cpu_dropout(full)
    first_only = copy.deepcopy(full)
    keys = list(first_only.state_dict())
    assert first_token_last_layer(first_only)
    assert list(first_only.state_dict()) == keys  # nothing renamed: the adapter saves and loads as before

    expected_attention = "modelops_cpu_dropout" if attention == "cpu_dropout" else attention
    assert first_only.get_base_model().config._attn_implementation == expected_attention

    ids = torch.randint(5, 200, (4, 11))
    padded = torch.ones_like(ids)
    padded[1, 6:], padded[2, 2:] = 0, 0  # the first token must not attend to padding
    labels = torch.tensor([0, 1, 2, 3])
    for mask in (padded, torch.ones_like(ids)):  # sdpa gets no mask at all for an unpadded batch
        expected = _logits_loss_and_gradients(full, ids, mask, labels)
        logits, loss, gradients = _logits_loss_and_gradients(first_only, ids, mask, labels)
        torch.testing.assert_close(logits, expected[0])
        torch.testing.assert_close(loss, expected[1])
        assert gradients.keys() == expected[2].keys()
        assert all(gradients[name].abs().sum() > 0 for name in gradients if "lora_A" in name)
        for name, gradient in gradients.items():
            torch.testing.assert_close(gradient, expected[2][name], msg=name)


def test_a_call_asking_for_hidden_states_or_attentions_gets_the_full_last_layer():
    full = _tiny_bert("eager").eval()
    first_only = copy.deepcopy(full)
    assert first_token_last_layer(first_only)
    ids = torch.randint(5, 200, (2, 9))
    for flag in ("output_hidden_states", "output_attentions"):
        with torch.no_grad():
            expected = full(input_ids=ids, **{flag: True})
            got = first_only(input_ids=ids, **{flag: True})
        key = flag.removeprefix("output_")
        assert len(got[key]) == len(expected[key])
        for mine, theirs in zip(got[key], expected[key], strict=True):
            torch.testing.assert_close(mine, theirs)


def test_only_the_last_layer_changes_and_training_mode_still_trains():
    model = _tiny_bert("eager")
    assert first_token_last_layer(model)
    layers = model.get_base_model().bert.encoder.layer
    assert "forward" in vars(layers[-1]) and not any("forward" in vars(layer) for layer in layers[:-1])
    model.train()
    ids = torch.randint(5, 200, (2, 7))
    loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 3])).loss
    loss.backward()
    assert torch.isfinite(loss)


def test_models_whose_head_reads_more_than_the_first_token_another_architecture_or_checkpointing_are_left_alone():
    distilbert = DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=200, dim=32, n_layers=2, n_heads=4, hidden_dim=64, num_labels=3))
    assert not first_token_last_layer(distilbert)
    no_pooler = BertForSequenceClassification(BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2,
                                                         num_attention_heads=4, intermediate_size=64))
    no_pooler.bert.pooler = None
    assert not first_token_last_layer(no_pooler)
    checkpointed = _tiny_bert("eager")
    checkpointed.get_base_model().gradient_checkpointing_enable()
    assert not first_token_last_layer(checkpointed)
