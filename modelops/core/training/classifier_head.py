"""A warm-started classifier that meets new classes: the champion's label order is kept and the new labels are
appended, and its head grows by one row per new label (the old rows keep what they learned)."""

from __future__ import annotations

from typing import Any

HEAD_NAMES = ("classifier", "score")  # the output layer of a sequence classifier (BERT-like, decoder-based)


def warm_start_labels(champion_labels: list[str], data_labels: set[str]) -> list[str]:
    """The label list of a model warm-started from a champion that knows `champion_labels`, on data with
    `data_labels`: the champion's labels in its order, then the new ones sorted. A champion label
    the data lacks stays (an incremental run trains on new rows and a replay sample, which need not hold every old
    class); only a full retrain drops a label."""
    return [*champion_labels, *sorted(data_labels - set(champion_labels))]


def grow_classifier_head(model: Any, num_labels: int) -> int:
    """Widen the output layer of a PEFT sequence classifier to `num_labels` rows: the existing rows are copied, the
    added ones start as a fresh head does (normal with the model's initializer range, zero bias). Returns the
    number of rows added (0 when the head is already that wide)."""
    from peft.utils import ModulesToSaveWrapper

    base = model.get_base_model()
    added = num_labels - base.config.num_labels
    if added <= 0:
        return 0
    std = getattr(base.config, "initializer_range", 0.02)
    for name, wrapper in model.named_modules():
        if isinstance(wrapper, ModulesToSaveWrapper) and name.split(".")[-1] in HEAD_NAMES:
            wrapper.original_module = _grown(wrapper.original_module, num_labels, std)
            for key in list(wrapper.modules_to_save):
                wrapper.modules_to_save[key] = _grown(wrapper.modules_to_save[key], num_labels, std)
    base.num_labels = num_labels
    base.config.num_labels = num_labels
    return added


def _grown(old: Any, num_labels: int, std: float) -> Any:
    """A copy of linear layer `old` with `num_labels` outputs: old rows kept, new rows freshly initialised."""
    import torch

    if not isinstance(old, torch.nn.Linear) or old.out_features >= num_labels:
        return old
    grown = torch.nn.Linear(old.in_features, num_labels, bias=old.bias is not None, device=old.weight.device,
                            dtype=old.weight.dtype)
    with torch.no_grad():
        grown.weight.normal_(0.0, std)
        grown.weight[: old.out_features] = old.weight
        if old.bias is not None:
            grown.bias.zero_()
            grown.bias[: old.out_features] = old.bias
    grown.requires_grad_(old.weight.requires_grad)
    return grown
