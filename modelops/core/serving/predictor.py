"""Load a base model plus a saved adapter and predict: labels, calibrated confidences and compact embeddings."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops.core.training.base_model import (
    BaseModelError,
    BaseModelInfo,
    describe_base_model,
    load_base_model,
    load_tokenizer,
    require_safetensors_adapter,
)
from modelops.core.training.batching import pad_sequences
from modelops.core.training.train import ADAPTER_MANIFEST, read_label_names

if TYPE_CHECKING:
    from modelops.core.serving.prediction_cache import PredictionCache

log = logging.getLogger(__name__)

EMBEDDING_DIM = 32
PADDING_BUDGET = 1.25  # a sub-batch may process at most this many times its real tokens


@dataclass(frozen=True)
class Predictions:
    """Predictions for a list of texts, row-aligned."""

    labels: list[str]
    confidences: np.ndarray  # (n,) calibrated max probability
    probabilities: np.ndarray  # (n, n_labels) in label_names order
    embeddings: np.ndarray  # (n, EMBEDDING_DIM) random projection of the mean-pooled last hidden state

    @classmethod
    def from_probabilities(cls, probabilities: np.ndarray, embeddings: np.ndarray,
                           label_names: list[str]) -> Predictions:
        """Labels and confidences are the most probable label and its probability."""
        return cls([label_names[i] for i in probabilities.argmax(axis=1)], probabilities.max(axis=1, initial=0.0),
                   probabilities, embeddings)


def embedding_projection(hidden_size: int) -> np.ndarray:
    """A fixed Gaussian random projection (seed 0): same base size, same projection, across processes."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((hidden_size, EMBEDDING_DIM)) / np.sqrt(EMBEDDING_DIM)).astype(np.float32)


def adapter_base(configured: BaseModelInfo, adapter_dir: Path) -> BaseModelInfo:
    """The base an adapter belongs to: the configured one, or (after a migration) the base its manifest names, when
    that folder still holds the very weights (sha256) the adapter was trained on."""
    recorded = json.loads((Path(adapter_dir) / ADAPTER_MANIFEST).read_text())["base"]
    if recorded["sha256"] == configured.sha256:
        return configured
    candidate = Path(recorded["path"])
    if candidate.is_dir():
        found = describe_base_model(candidate, configured.task_type)
        if found.sha256 == recorded["sha256"]:
            return found
    raise BaseModelError(
        f"Adapter {adapter_dir} was trained on base {recorded['name']} (sha256 {recorded['sha256'][:12]}...), which is "
        f"not at {candidate} any more, and the configured base is {configured.name} (sha256 "
        f"{configured.sha256[:12]}...). Restore that base or migrate the adapter (modelops migrate --base ...)."
    )


def labels_and_temperature(adapter_dir: Path) -> tuple[list[str], float]:
    """An adapter's label names and its calibration temperature (1.0 when it records none)."""
    manifest = json.loads((Path(adapter_dir) / ADAPTER_MANIFEST).read_text())
    return read_label_names(Path(adapter_dir)), float(manifest.get("temperature", 1.0))


class Classifier:
    """Predictions from a sequence-classification model: calibrated probabilities and compact embeddings."""

    label_names: list[str]
    temperature: float
    max_length: int
    tokenizer: Any
    _projection: np.ndarray
    prediction_cache: PredictionCache | None = None  # set for a registered version (evaluation)

    def _read_manifest(self, adapter_dir: Path) -> None:
        self.label_names, self.temperature = labels_and_temperature(adapter_dir)

    def _forward(self, sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Logits and mean-pooled last hidden states for token-id sequences of similar length."""
        raise NotImplementedError

    def predict(self, texts: list[str], batch_size: int = 64) -> Predictions:
        """Predict, tokenising once and running length-bucketed sub-batches (little padding); texts this version
        already predicted come from its `prediction_cache`, when it has one."""
        if self.prediction_cache is not None:
            return self.prediction_cache.predict(lambda new: self._predict(new, batch_size), texts)
        return self._predict(texts, batch_size)

    def _predict(self, texts: list[str], batch_size: int) -> Predictions:
        n = len(texts)
        probs = np.zeros((n, len(self.label_names)), dtype=np.float32)
        embeddings = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        for idx in length_buckets([len(ids) for ids in encoded], batch_size):
            logits, pooled = self._forward([encoded[i] for i in idx])
            probs[idx] = softmax(logits / self.temperature)
            embeddings[idx] = pooled @ self._projection
        return Predictions.from_probabilities(probs, embeddings, self.label_names)


class _TorchClassifier(Classifier):
    """A classifier whose forward pass is a PyTorch model."""

    def _model(self) -> Any:
        raise NotImplementedError

    def _forward(self, sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        input_ids, mask = pad_sequences(sequences, self.tokenizer.pad_token_id)
        with torch.inference_mode():
            out = self._model()(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
            pooled = mean_pool(out.hidden_states[-1], mask)
        return out.logits.float().numpy(), pooled.float().numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Mean of the hidden states over the real (unmasked) tokens: torch tensors in, torch tensor out."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


class AdapterClassifier(_TorchClassifier):
    """A sequence classifier: the base model with one LoRA adapter (and its head) merged in for inference."""

    def __init__(self, base: BaseModelInfo, adapter_dir: Path, max_length: int = 128) -> None:
        from peft import PeftModel

        adapter_dir = Path(adapter_dir)
        base = adapter_base(base, adapter_dir)
        self._read_manifest(adapter_dir)
        self.max_length = max_length
        self.tokenizer = load_tokenizer(base)
        model = PeftModel.from_pretrained(load_base_model(base, num_labels=len(self.label_names)),
                                          str(require_safetensors_adapter(adapter_dir)))
        self.model: Any = model.merge_and_unload().eval()
        self._projection = embedding_projection(self.model.config.hidden_size)

    @classmethod
    def from_paths(cls, base_path: Path, adapter_dir: Path) -> AdapterClassifier:
        return cls(describe_base_model(base_path), adapter_dir)

    def _model(self) -> Any:
        return self.model


class SharedBase:
    """One copy of a base model for many adapters (PEFT multi-adapter): each adapter adds only its LoRA weights and
    its head. The active adapter is model-wide state, so predictions and adapter changes take turns (one lock)."""

    def __init__(self, base: BaseModelInfo, max_length: int = 128) -> None:
        self.base = base
        self.max_length = max_length
        self.tokenizer = load_tokenizer(base)
        self.lock = threading.Lock()
        self.model: Any = None
        self.projection: np.ndarray | None = None
        self.slots: set[str] = set()
        self._next = itertools.count()

    def add(self, adapter_dir: Path) -> SharedBaseAdapter:
        """Load the adapter at `adapter_dir` next to the others (its head sized for its labels)."""
        from peft import PeftConfig, PeftModel, set_peft_model_state_dict
        from peft.utils import load_peft_weights

        slot, labels = f"adapter_{next(self._next)}", read_label_names(Path(adapter_dir))
        folder = str(require_safetensors_adapter(Path(adapter_dir)))
        with self.lock:
            if self.model is None:
                base_model = load_base_model(self.base, num_labels=len(labels))
                self.model = PeftModel.from_pretrained(base_model, folder, adapter_name=slot).eval()
                self.projection = embedding_projection(self.model.config.hidden_size)
            else:
                self.model.add_adapter(slot, PeftConfig.from_pretrained(folder))
                _size_heads(self.model, slot, len(labels))
                set_peft_model_state_dict(self.model, load_peft_weights(folder), adapter_name=slot)
                self.model.eval()
            self.slots.add(slot)
        return SharedBaseAdapter(self, slot, Path(adapter_dir))

    def remove(self, slot: str) -> None:
        """Unload adapter `slot`; without adapters left, the base's weights go too."""
        import warnings

        with self.lock:
            self.slots.discard(slot)
            if not self.slots:
                self.model = None
                return
            with warnings.catch_warnings():  # PEFT warns that another adapter becomes active: the next predict picks
                warnings.simplefilter("ignore")
                self.model.delete_adapter(slot)


def _size_heads(model: Any, slot: str, num_labels: int) -> None:
    """Give adapter `slot` linear heads with `num_labels` outputs (its copy of the first adapter's head may differ)."""
    import torch
    from peft.utils import ModulesToSaveWrapper

    for module in model.modules():
        if isinstance(module, ModulesToSaveWrapper) and slot in module.modules_to_save:
            head = module.modules_to_save[slot]
            if isinstance(head, torch.nn.Linear) and head.out_features != num_labels:
                module.modules_to_save[slot] = torch.nn.Linear(head.in_features, num_labels, bias=head.bias is not None)


class SharedBaseAdapter(_TorchClassifier):
    """One adapter on a SharedBase: predicts with that adapter active."""

    def __init__(self, shared: SharedBase, slot: str, adapter_dir: Path) -> None:
        self.shared, self.slot = shared, slot
        self._read_manifest(adapter_dir)
        self.max_length = shared.max_length
        self.tokenizer = shared.tokenizer
        self._projection = shared.projection

    def _model(self) -> Any:
        return self.shared.model

    def predict(self, texts: list[str], batch_size: int = 64) -> Predictions:
        with self.shared.lock:
            self.shared.model.set_adapter(self.slot)
            return super().predict(texts, batch_size)

    def release(self) -> None:
        """Unload this adapter (call once no prediction uses it)."""
        self.shared.remove(self.slot)


class SharedBases:
    """Adapters on shared bases: one copy of each distinct base in use (a migrated adapter brings its own base)."""

    def __init__(self, configured: BaseModelInfo, max_length: int = 128) -> None:
        self.configured = configured
        self.max_length = max_length
        self.bases: dict[str, SharedBase] = {}
        self._lock = threading.Lock()

    def load(self, adapter_dir: Path) -> SharedBaseAdapter:
        adapter_dir = Path(adapter_dir)
        base = adapter_base(self.configured, adapter_dir)
        with self._lock:
            shared = self.bases.setdefault(base.sha256, SharedBase(base, self.max_length))
        return shared.add(adapter_dir)


def length_buckets(lengths: list[int], max_size: int, max_padding: float = PADDING_BUDGET) -> list[list[int]]:
    """Indices grouped by similar length: each group pads to at most `max_padding` times its real tokens.

    On a CPU a forward pass costs about what its padded tokens cost, so one batch padded to its longest text can
    waste most of what batching saves; a few shorter batches of similar lengths do the same work for less.
    """
    groups: list[list[int]] = []
    group: list[int] = []
    real = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if group and (len(group) >= max_size or (len(group) + 1) * lengths[i] > max_padding * (real + lengths[i])):
            groups.append(group)
            group, real = [], 0
        group.append(i)
        real += lengths[i]
    if group:
        groups.append(group)
    return groups
