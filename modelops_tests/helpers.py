"""Helpers shared by the tests: free ports, traffic captured as the server captures it, labelled feedback, real
adapters and bases built from the shipped MiniLM, synthetic drift traffic and hand-built evaluation reports."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelops.core.evaluation.evaluate import EvaluationReport, evaluate
from modelops.core.evaluation.evaluation_policy import CostModel
from modelops.core.monitoring.traffic_writer import TrafficRecord, TrafficWriter

LABELS = ["billing", "refund", "shipping"]


def free_port() -> int:
    """A loopback port nothing listens on (also what tests use as a closed port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ captured traffic and feedback

def write_captured_batch(folder: Path, classifier, texts: list[str], model_name: str = "support-router") -> list[str]:
    """One batch file of the classifier's real predictions on `texts`, as the server writes it; returns the ids."""
    predictions = classifier.predict(texts)
    records = [TrafficRecord(uuid.uuid4().hex, datetime.now(UTC), text, label, float(confidence), model_name, "1",
                             1.0, embedding.tolist())
               for text, label, confidence, embedding in zip(texts, predictions.labels, predictions.confidences,
                                                             predictions.embeddings, strict=True)]
    writer = TrafficWriter(folder, max_rows=len(records) + 1)
    writer.append(records)
    writer.close()
    return [r.id for r in records]


def write_drifted_batch(settings, classifier, seed: int, rows: int = 300) -> list[str]:
    """A captured batch of the generator's language_shift scenario at full severity; returns the ids."""
    from modelops.core.data.datagen import generate_scenario

    texts = generate_scenario("language_shift", rows, seed=seed, severity=1.0)["text"].tolist()
    return write_captured_batch(settings.production_dir, classifier, texts, settings.registered_model_name)


def label_feedback(settings, ids: list[str], name: str, label: str = "billing") -> None:
    """Annotators label captured predictions: an id,label file in data/feedback/."""
    settings.feedback_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": ids, "label": label}).to_csv(settings.feedback_dir / f"{name}.csv", index=False)


# ------------------------------------------------------------------ real adapters and bases

def save_random_adapter(base_info, folder: Path, labels: list[str], seed: int) -> Path:
    """A real adapter whose LoRA weights are not zero (init_lora_weights=False), so it changes the base's outputs."""
    from peft import LoraConfig, get_peft_model

    from modelops.core.training.base_model import load_base_model
    from modelops.core.training.train import save_adapter, seed_everything
    from modelops.core.training.training_config import TrainingConfig

    seed_everything(seed)
    model = get_peft_model(load_base_model(base_info, num_labels=len(labels)),
                           LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"],
                                      init_lora_weights=False))
    save_adapter(model, folder, labels, base_info, TrainingConfig(), {"temperature": 1.0})
    return folder


def build_smaller_base(source: Path, target: Path, layers: int) -> Path:
    """A second real base built from the shipped MiniLM: its first `layers` transformer layers, same tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(source)
    model.encoder.layer = model.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    model.save_pretrained(target, safe_serialization=True)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


# ------------------------------------------------------------------ synthetic drift traffic (numpy)

TRAFFIC_LABELS = np.array(["billing", "refund", "shipping"])
COMMON = np.array("i my the a to is was for please help order account need can you it on with".split())
LABEL_WORDS = np.array([
    "invoice charge charged bill payment card twice amount statement fee".split(),
    "refund money back return returned reimburse credit cancel cancelled damaged".split(),
    "delivery shipped package tracking arrive late courier address parcel lost".split(),
])
NEW_WORDS = np.array("subscription upgrade premium plan voucher coupon loyalty points reward tier".split())
GERMAN_WORDS = np.array(
    "bitte rückerstattung lieferung größe später über geöffnet zurück kündigung straße".split()
)
DIM = 32
CENTROIDS = np.random.default_rng(123).normal(size=(len(TRAFFIC_LABELS), DIM))
BASE_LABEL_MIX = (0.5, 0.3, 0.2)
SAME_DISTRIBUTION = {"label_mix": BASE_LABEL_MIX, "mean_words": 8.0, "foreign": None, "foreign_share": 0.0,
                     "confidence_beta": (8.0, 2.0), "embedding_shift": 0.0}
SHIFTS: dict[str, dict[str, Any]] = {
    "new_words": {"foreign": NEW_WORDS, "foreign_share": 0.3},
    "other_language": {"foreign": GERMAN_WORDS, "foreign_share": 0.6, "embedding_shift": 0.3},
    "longer_texts": {"mean_words": 14.0},
    "label_mix": {"label_mix": (0.2, 0.3, 0.5)},
    "lower_confidence": {"confidence_beta": (4.0, 2.0)},
    "embedding_shift": {"embedding_shift": 0.2},
}


def traffic(n: int, seed: int, **shift: Any) -> pd.DataFrame:
    """A traffic window: label-specific + common words, per-label embedding centroids, Beta confidences."""
    spec = {**SAME_DISTRIBUTION, **shift}
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(TRAFFIC_LABELS), size=n, p=np.asarray(spec["label_mix"]) / sum(spec["label_mix"]))
    counts = 2 + rng.poisson(spec["mean_words"] - 2, size=n)
    word_labels = np.repeat(labels, counts)
    draw = rng.random(word_labels.size)
    words = np.where(draw < 0.5, LABEL_WORDS[word_labels, rng.integers(LABEL_WORDS.shape[1], size=draw.size)],
                     COMMON[rng.integers(COMMON.size, size=draw.size)])
    if spec["foreign"] is not None:
        foreign = spec["foreign"][rng.integers(spec["foreign"].size, size=draw.size)]
        words = np.where(rng.random(draw.size) < spec["foreign_share"], foreign, words)
    texts = [" ".join(chunk).capitalize() for chunk in np.split(words, np.cumsum(counts)[:-1])]
    embeddings = CENTROIDS[labels] + rng.normal(size=(n, DIM)) + spec["embedding_shift"]
    return pd.DataFrame({
        "text": texts,
        "predicted_label": TRAFFIC_LABELS[labels],
        "confidence": rng.beta(*spec["confidence_beta"], size=n),
        "embedding": list(embeddings.astype(np.float32)),
    })


# ------------------------------------------------------------------ evaluation reports from confusion counts

GATE_LABELS = ["billing", "fraud_report", "refund"]
GATE_COSTS = CostModel(default_error_cost=1.0, correct_cost=0.0,
                       pair_costs=[{"true": "fraud_report", "predicted": "billing", "cost": 5.0}],
                       missed_class_costs={"fraud_report": 25.0})
# 60 examples, 20 per class; 18 right per class. Errors: billing -> refund, fraud -> billing, refund -> billing.
CHAMPION_COUNTS = {("billing", "billing"): 18, ("billing", "refund"): 2, ("fraud_report", "fraud_report"): 18,
                   ("fraud_report", "billing"): 2, ("refund", "refund"): 18, ("refund", "billing"): 2}


def report_from_counts(counts: dict[tuple[str, str], int], labels: list[str] = GATE_LABELS) -> EvaluationReport:
    """Evaluate predictions given as {(true, predicted): count}, with confidence 0.9 on the prediction."""
    y_true: list[str] = []
    rows: list[np.ndarray] = []
    for (true, predicted), count in counts.items():
        row = np.full(len(labels), 0.1 / (len(labels) - 1))
        row[labels.index(predicted)] = 0.9
        y_true += [true] * count
        rows += [row] * count
    return evaluate(y_true, np.array(rows), labels, GATE_COSTS)


def override(resources: dict, concern: str, customisation: str, entry: object) -> dict:
    """`resources` with one customisation's entry of a concern (`lakes`, `mlflow`, `policies`) replaced."""
    by_name = resources[concern]
    return {**resources, concern: type(by_name)(customisations={**by_name.customisations, customisation: entry})}


def build_tiny_causal_lm(folder: Path, texts: list[str], vocab_size: int = 512, hidden: int = 64) -> Path:
    """A 2-layer Llama with random weights and a byte-level BPE tokenizer trained on `texts` (decoding gives the
    text back exactly, as with the tokenizers of real causal LMs), saved as a Hugging Face folder (safetensors).

    The embeddings and the output head are drawn at std 0.3, not Llama's 0.02: the frozen head of so small a random
    model could otherwise never make a confident prediction, whatever a LoRA adapter learns (a pretrained head can).
    The blocks' matrices are drawn at std 0.05: at 0.3 their random attention scrambles the context so hard that
    whether the adapter learns the response format depends on the tokenizer's merges (measured: 0 to 97 % valid
    JSON across three tokenizer corpora after 3 epochs; 100 % for all three at 0.05 after 6).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>")
    tokenizer.save_pretrained(str(folder))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, initializer_range=0.3)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, weight in model.model.layers.named_parameters():
            if weight.dim() == 2:
                weight.normal_(0.0, 0.05)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder
