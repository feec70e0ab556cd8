"""CPU dropout: Bernoulli keep masks at the configured rate in every bit position, dropout's scaling and gradient,
and a model that predicts exactly as before the swap and drops out, reproducibly, in training."""

from __future__ import annotations

import math

import pytest
import torch

from modelops.core.training.base_model import load_base_model, load_tokenizer
from modelops.core.training.cpu_dropout import ATTENTION, drop, keep_mask, use_cpu_dropout
from modelops.core.training.train import peft_model
from modelops.core.training.training_config import TrainingConfig


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_keep_masks_keep_one_minus_p_from_each_of_the_four_draws_of_a_random_number(p: float):
    torch.manual_seed(0)
    mask = keep_mask(torch.Size((1000, 1000)), p).flatten()
    for position in range(4):  # each 64-bit number gives four 16-bit draws: none may be stuck or biased
        share = mask[position::4].double().mean().item()
        assert abs(share - (1 - p)) < 5 * math.sqrt(p * (1 - p) / 250_000), (position, share)
    torch.manual_seed(0)
    assert torch.equal(keep_mask(torch.Size((1000, 1000)), p).flatten(), mask)


def test_dropout_scales_what_it_keeps_passes_gradients_through_the_mask_and_is_off_outside_training():
    torch.manual_seed(1)
    x = torch.ones(200_000, requires_grad=True)
    y = drop(x, 0.2, training=True)
    assert set(y.unique().tolist()) == {0.0, 1.25} and abs(y.mean().item() - 1.0) < 0.01
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())
    assert drop(x, 0.2, training=False) is x and drop(x, 0.0, training=True) is x
    assert not drop(x, 1.0, training=True).any()


def test_a_model_with_cpu_dropout_predicts_as_before_and_drops_out_reproducibly_in_training(base_info):
    model = peft_model(load_base_model(base_info, num_labels=3), TrainingConfig(), "SEQ_CLS", None).eval()
    tokenizer = load_tokenizer(base_info)
    batch = dict(tokenizer(["my card was charged twice", "where is my parcel, it is late"], padding=True,
                           return_tensors="pt"))
    dropouts = sum(type(m) is torch.nn.Dropout for m in model.modules())
    with torch.inference_mode():
        before = model(**batch).logits

    assert use_cpu_dropout(model) == dropouts > 0
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert model.get_base_model().config._attn_implementation == ATTENTION
    with torch.inference_mode():
        torch.testing.assert_close(model(**batch).logits, before, atol=1e-5, rtol=1e-4)
    model.train()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(model(**batch).logits.detach())
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], before, atol=1e-3)
