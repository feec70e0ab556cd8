"""LoRA training: few steps on the real MiniLM, determinism, warm starts, bad configuration, the causal-LM path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from modelops.core.config_files import ConfigError, load_config
from modelops.core.training.base_model import BaseModelError, describe_base_model
from modelops.core.training.batching import length_grouped_batches
from modelops.core.training.causal_lm import train_causal_lm_adapter
from modelops.core.training.train import (
    TrainingConfigError,
    incremental_training_set,
    incremental_validation_set,
    macro_f1,
    new_rows,
    read_label_names,
    stratified_sample,
    save_adapter,
    seen_rows,
    train_classifier_adapter,
    uses_bf16,
)
from modelops.core.training.training_config import TrainingConfig

FEW_STEPS = TrainingConfig(epochs=1, max_steps=4, batch_size=8, seed=7)


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    from modelops.core.data.curate import curate
    from modelops.core.data.datagen import generate_corpus

    curated, _ = curate(generate_corpus(400, seed=1).assign(source="generator"))
    return curated[curated["split"] == "train"], curated[curated["split"] == "validation"]


def test_few_steps_save_only_the_adapter_and_are_deterministic(frames, base_info, tmp_path: Path):
    train, validation = frames
    seen: list[dict] = []
    first = train_classifier_adapter(train, validation, base_info, FEW_STEPS, tmp_path / "a", on_progress=seen.append)
    second = train_classifier_adapter(train, validation, base_info, FEW_STEPS, tmp_path / "b")
    assert first.steps == 4 and seen and "val_macro_f1" in seen[-1]
    files = {p.name for p in first.adapter_dir.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "labels.json", "modelops.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert (first.adapter_dir / "adapter_model.safetensors").stat().st_size < 5_000_000
    assert read_label_names(first.adapter_dir) == sorted(set(train["label"]))
    a, b = (load_file(str(r.adapter_dir / "adapter_model.safetensors")) for r in (first, second))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert any("classifier" in k for k in a) and any("lora_" in k for k in a)


def test_mixed_precision_runs_bf16_only_where_the_cpu_computes_it_natively(frames, base_info, tmp_path: Path):
    """With `mixed_precision` on, the steps run under bf16 autocast exactly when this CPU has native bf16, so the
    adapter differs from the fp32 one there and nowhere else; the saved weights stay fp32 either way."""
    import torch

    train, validation = frames
    fp32 = train_classifier_adapter(train, validation, base_info, FEW_STEPS.model_copy(update={"mixed_precision": False}),
                                    tmp_path / "fp32")
    mixed = train_classifier_adapter(train, validation, base_info, FEW_STEPS, tmp_path / "mixed")
    a, b = (load_file(str(r.adapter_dir / "adapter_model.safetensors")) for r in (fp32, mixed))
    assert all(t.dtype == torch.float32 for t in (*a.values(), *b.values()))
    identical = all(torch.equal(a[k], b[k]) for k in a)
    assert identical is not uses_bf16(torch.device("cpu"))
    assert not uses_bf16(torch.device("cpu"), mixed_precision=False)


def test_warm_start_grows_the_head_for_new_labels(frames, base_info, untrained_adapter_dir: Path, tmp_path: Path):
    """The champion knows 3 of the generator's 10 labels: its order is kept, the 7 new ones are appended, and the
    grown model trains, saves and loads like any other."""
    from modelops.core.serving.predictor import AdapterClassifier

    train, validation = frames
    config = TrainingConfig(mode="incremental", epochs=1, max_steps=2)
    result = train_classifier_adapter(train, validation, base_info, config, tmp_path / "grown",
                                      init_adapter=untrained_adapter_dir)
    new = sorted(set(train["label"]) - {"billing", "refund", "shipping"})
    assert len(new) == 7 and result.label_names == ["billing", "refund", "shipping", *new]
    assert read_label_names(result.adapter_dir) == result.label_names
    predictions = AdapterClassifier(base_info, result.adapter_dir).predict(validation["text"].head(20).tolist())
    assert predictions.probabilities.shape == (20, 10)


def test_grown_head_keeps_the_old_rows_and_adds_fresh_ones(base_info, untrained_adapter_dir: Path):
    import torch
    from peft import PeftModel

    from modelops.core.training.base_model import load_base_model
    from modelops.core.training.classifier_head import grow_classifier_head

    model = PeftModel.from_pretrained(load_base_model(base_info, num_labels=3), str(untrained_adapter_dir),
                                      is_trainable=True)
    head = model.base_model.model.classifier
    old_weight, old_bias = head.modules_to_save["default"].weight.detach().clone(), head.modules_to_save[
        "default"].bias.detach().clone()
    assert grow_classifier_head(model, 5) == 2 and grow_classifier_head(model, 5) == 0
    grown = head.modules_to_save["default"]
    assert grown.weight.shape == (5, 384) and grown.weight.requires_grad
    assert torch.equal(grown.weight[:3], old_weight) and torch.equal(grown.bias[:3], old_bias)
    assert grown.weight[3:].abs().sum() > 0 and torch.equal(grown.bias[3:], torch.zeros(2))
    ids = torch.tensor([[101, 2054, 102]])
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([4]))
    assert out.logits.shape == (1, 5) and torch.isfinite(out.loss)


def test_a_warm_start_keeps_champion_labels_its_rows_lack_and_checks_validation(base_info, untrained_adapter_dir: Path,
                                                                                 tmp_path: Path):
    """An incremental run's new rows and replay sample need not hold every old class: the champion's labels stay
    (validation rows of them are fine); a validation label neither the data nor the champion knows is refused."""
    frame = pd.DataFrame([("my invoice is wrong", "billing"), ("refund my order", "refund")] * 6,
                         columns=["text", "label"])
    validation = pd.concat([frame, pd.DataFrame([("where is my parcel", "shipping")], columns=["text", "label"])])
    config = TrainingConfig(mode="incremental", epochs=1, max_steps=1)
    result = train_classifier_adapter(frame, validation, base_info, config, tmp_path / "kept",
                                      init_adapter=untrained_adapter_dir)
    assert result.label_names == ["billing", "refund", "shipping"]
    unknown = pd.DataFrame([("hello", "greeting")], columns=["text", "label"])
    with pytest.raises(TrainingConfigError, match=r"\['greeting'\] never occur in the training data or the warm"):
        train_classifier_adapter(frame, unknown, base_info, config, tmp_path / "x", init_adapter=untrained_adapter_dir)


def test_warm_start_continues_from_the_adapter(base_info, untrained_adapter_dir: Path, tmp_path: Path):
    rows = [("my invoice is wrong", "billing"), ("refund my order", "refund"), ("where is my parcel", "shipping")] * 6
    frame = pd.DataFrame(rows, columns=["text", "label"])
    config = TrainingConfig(mode="incremental", epochs=1, max_steps=2, batch_size=4)
    result = train_classifier_adapter(frame, frame, base_info, config, tmp_path / "inc", init_adapter=untrained_adapter_dir)
    assert result.steps == 2 and read_label_names(result.adapter_dir) == ["billing", "refund", "shipping"]


BAD_TRAINING_POLICIES = [
    ("lora:\n  target_modules: []\n", r"training.yaml: lora.target_modules: Tuple should have at least 1 item"),
    ("replay_share:\n  moderate: 1.0\n", r"training.yaml: replay_share.moderate: Input should be less than 1"),
    ("replay_share:\n  moderate: 0.3\n  severe: 0.1\n",
     r"replay_share: .*severe \(0.1\) must be at least moderate \(0.3\)"),
    ("replay_share:\n  moderate: -0.1\n", r"replay_share.moderate: Input should be greater than or equal to 0"),
    ("replay_fraction: 0.5\nreplay_share:\n  moderate: 0.1\n", r"set replay_share only"),
    ("replay_fraction: 2\n", r"replay_fraction must be a number in \[0, 1\], got 2"),
    ("epoch: 3\n", r"training.yaml: epoch: unknown key; expected one of \['mode', 'epochs'"),
    ("learning_rate: 2\n", "training.yaml: learning_rate: Input should be less than 1, got 2"),
]


def test_bad_configuration_fails_early(tmp_path: Path):
    policy = tmp_path / "training.yaml"
    for text, error in BAD_TRAINING_POLICIES:
        policy.write_text(text)
        with pytest.raises(ConfigError, match=error):
            load_config(policy, TrainingConfig)
    with pytest.raises(BaseModelError, match="does not exist"):
        describe_base_model(tmp_path / "missing")
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text("{}")
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(BaseModelError, match="only safetensors"):
        describe_base_model(tmp_path / "pickled")


def test_unknown_target_modules_fail_with_clear_message(frames, base_info, tmp_path: Path):
    train, validation = frames
    config = TrainingConfig.model_validate({"max_steps": 1, "lora": {"target_modules": ["q_proj"]}})
    with pytest.raises(TrainingConfigError, match="do not match the base model"):
        train_classifier_adapter(train, validation, base_info, config, tmp_path / "x")


def test_incremental_training_set_mixes_new_and_replay():
    """The replayed share of the rows follows the drift's severity; a run started by hand takes the severe share."""
    train = pd.DataFrame({"id": [f"i{i}" for i in range(100)], "text": "t", "label": ["a", "b"] * 50})
    seen = seen_rows(train.iloc[:80])  # 20 new rows
    config = TrainingConfig(replay_share={"moderate": 0.2, "severe": 0.5}, replay_per_old_label=0)
    mixed = incremental_training_set(train, seen, config, "moderate")
    assert len(mixed) == 25 and mixed["id"].isin([f"i{i}" for i in range(80, 100)]).sum() == 20
    assert len(incremental_training_set(train, seen, config, "severe")) == 40
    assert incremental_training_set(train, seen, config).equals(incremental_training_set(train, seen, config, "severe"))
    no_replay = TrainingConfig(replay_share={"moderate": 0.0, "severe": 0.0}, replay_per_old_label=0)
    assert len(incremental_training_set(train, seen, no_replay)) == 20
    # a seen text whose label feedback corrected is new: the correction is what the run must learn
    corrected = train.assign(label=train["label"].where(train["id"] != "i0", "b"))  # i0 was "a"
    assert "i0" in set(incremental_training_set(corrected, seen, no_replay)["id"])
    assert new_rows(corrected, seen).sum() == 21
    with pytest.raises(ValueError, match="unknown drift severity 'Moderate'"):
        incremental_training_set(train, seen, config, "Moderate")
    # a policy (or a recorded run config) of an earlier release: replay_fraction rows per new row, as before
    earlier = TrainingConfig.model_validate({"replay_fraction": 0.5, "replay_per_old_label": 0})
    assert len(incremental_training_set(train, seen, earlier, "moderate")) == 30 == len(
        incremental_training_set(train, seen, earlier))
    with pytest.raises(TrainingConfigError, match="no examples"):
        incremental_training_set(train, seen_rows(train), TrainingConfig())
    # many old labels: at least replay_per_old_label rows of each (capped by what exists)
    many = pd.DataFrame({"id": [f"i{i}" for i in range(400)], "text": "t", "label": [f"l{i % 40}" for i in range(400)]})
    seen = seen_rows(many.iloc[:380])
    assert len(incremental_training_set(many, seen, TrainingConfig(replay_per_old_label=0), "moderate")) == 20 + 1
    per_label = incremental_training_set(many, seen, TrainingConfig(replay_per_old_label=3))
    assert len(per_label) == 20 + 120 and per_label[~per_label["id"].isin({f"i{i}" for i in range(380, 400)})][
        "label"].value_counts().eq(3).all()


def test_temperature_is_fitted_on_the_calibration_rows_when_given(frames, base_info, tmp_path: Path, monkeypatch):
    """Early stopping follows the (small) validation set; the temperature is fitted on the calibration rows, whose
    labels are checked like the validation labels."""
    import modelops.core.training.train as train_module

    train, validation = frames
    fitted: list[int] = []
    real_fit = train_module.fit_temperature
    monkeypatch.setattr(train_module, "fit_temperature", lambda logits, labels: fitted.append(len(labels)) or real_fit(
        logits, labels))
    small = validation.head(12)
    result = train_classifier_adapter(train, small, base_info, FEW_STEPS, tmp_path / "a", calibration=validation)
    assert fitted == [len(validation)] and len(result.history) == 1
    train_classifier_adapter(train, small, base_info, FEW_STEPS, tmp_path / "b")
    assert fitted == [len(validation), len(small)]  # no calibration rows: the validation logits
    with pytest.raises(TrainingConfigError, match="never occur in the training data"):
        train_classifier_adapter(train, small, base_info, FEW_STEPS, tmp_path / "c",
                                 calibration=validation.assign(label="an unseen label"))


def test_incremental_validation_set_is_mixed_like_the_training_set():
    """An incremental run validates on the split's new rows plus the same replay share of its old ones, stratified;
    with no new validation rows, on the per-label floor; the whole split only when that mix would be empty."""
    validation = pd.DataFrame({"id": [f"v{i}" for i in range(60)], "text": "t", "label": ["a", "b", "c"] * 20})
    seen = seen_rows(validation.iloc[:48])  # 12 new rows
    config = TrainingConfig(replay_share={"moderate": 0.2, "severe": 0.5}, replay_per_old_label=1)
    mixed = incremental_validation_set(validation, seen, config, "severe")
    assert len(mixed) == 24 and mixed["id"].isin([f"v{i}" for i in range(48, 60)]).sum() == 12
    assert mixed[mixed["id"].isin(validation["id"][:48])]["label"].value_counts().to_dict() == {"a": 4, "b": 4, "c": 4}
    assert len(incremental_validation_set(validation, seen, config, "moderate")) == 12 + 3  # the floor: 1 per label
    assert mixed.equals(incremental_validation_set(validation, seen, config, "severe"))  # seeded
    all_old = incremental_validation_set(validation, seen_rows(validation), config, "severe")
    assert len(all_old) == 3 and set(all_old["label"]) == {"a", "b", "c"}
    no_floor = config.model_copy(update={"replay_per_old_label": 0})
    assert set(incremental_validation_set(validation, seen_rows(validation), no_floor)["id"]) == set(validation["id"])


def test_macro_f1_is_scikit_learns():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    cases = [(rng.integers(0, 7, 200), rng.integers(0, 9, 200)) for _ in range(20)]
    cases += [(np.array([0, 0, 1]), np.array([0, 0, 1])), (np.array([0, 1]), np.array([2, 3])),
              (np.array([3]), np.array([3]))]
    for truth, predicted in cases:
        assert macro_f1(truth, predicted) == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-12)


def test_replay_is_stratified_over_the_old_labels():
    """90/9/1 old rows, 10 replayed: 9 and 1 in proportion (a random 10 misses `b` about a third of the time), the
    one-row class only once a tenth of its share reaches half a row; seeded, and never more rows than asked."""
    old = pd.DataFrame({"id": [f"o{i}" for i in range(100)], "text": "t", "label": ["a"] * 90 + ["b"] * 9 + ["c"]})
    replay = stratified_sample(old, 10, seed=3)
    assert replay["label"].value_counts().to_dict() == {"a": 9, "b": 1} and replay["id"].is_unique
    assert replay.equals(stratified_sample(old, 10, seed=3)) and not replay.equals(stratified_sample(old, 10, seed=4))
    assert stratified_sample(old, 20, seed=0)["label"].value_counts().to_dict() == {"a": 18, "b": 2}
    assert set(stratified_sample(old, 100, seed=0)["id"]) == set(old["id"])
    assert stratified_sample(old, 0, seed=0).empty


def test_length_grouped_batches_cover_every_index_once():
    lengths = [5, 50, 7, 48, 6, 49, 30, 31] * 10
    batches = length_grouped_batches(lengths, batch_size=8, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    spread = max(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread < 45  # batches are grouped by length, not random


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory, base_info) -> Path:
    """A 2-layer Llama built from a config (random weights, safetensors) with a WordPiece tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(str(base_info.path))
    tokenizer.eos_token = "[SEP]"
    tokenizer.save_pretrained(str(folder))
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


def test_causal_lm_adapter_learns_responses_only(tiny_causal_lm: Path, tmp_path: Path):
    base = describe_base_model(tiny_causal_lm, "causal-lm")
    records = pd.DataFrame({"prompt": ["route: my card was stolen ->", "route: where is my parcel ->"] * 8,
                            "response": [" fraud_report", " shipping"] * 8})
    config = TrainingConfig.model_validate({"epochs": 3, "batch_size": 4, "learning_rate": 0.01,
                                       "early_stopping_patience": 5, "evaluations_per_epoch": 1,
                                       "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}})
    result = train_causal_lm_adapter(records, records, base, config, tmp_path / "causal")
    losses = [h["val_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    with pytest.raises(TrainingConfigError, match="prompt,response"):
        train_causal_lm_adapter(records.rename(columns={"prompt": "q"}), records, base, config, tmp_path / "bad")


def test_too_long_instructions_keep_the_response_and_the_end_of_the_prompt(base_info):
    from modelops.core.training.base_model import load_tokenizer
    from modelops.core.training.causal_lm import encode_instructions

    tokenizer = load_tokenizer(base_info)
    frame = pd.DataFrame({"prompt": ["alpha " * 100 + "omega", "short"], "response": [" answer " * 40, " yes"]})
    (long_ids, short_ids), (long_labels, short_labels) = encode_instructions(tokenizer, frame, max_length=32)
    assert len(long_ids) == len(long_labels) == 32
    learned = [t for t in long_labels if t != -100]
    assert len(learned) == 16  # the response keeps half the window
    assert tokenizer.convert_ids_to_tokens(long_ids[15]) == "omega"  # the prompt's end, next to the response
    assert short_ids[-1] == tokenizer.eos_token_id and short_labels[0] == -100 and short_labels[-1] != -100


def test_compile_repeated_blocks_wraps_every_transformer_layer(tiny_causal_lm: Path):
    from transformers import AutoModelForCausalLM

    from modelops.core.training.train import compile_repeated_blocks

    model = AutoModelForCausalLM.from_pretrained(str(tiny_causal_lm))
    assert compile_repeated_blocks(model) == 2
    assert all(layer._compiled_call_impl is not None for layer in model.model.layers)


def test_temperature_scaling_never_returns_a_non_finite_temperature():
    import numpy as np

    from modelops.core.training.train import fit_temperature

    labels = np.array([0, 1, 0, 1])
    assert fit_temperature(np.full((4, 2), np.nan, dtype=np.float32), labels) == 1.0
    calibrated = fit_temperature(np.array([[4.0, -4.0], [-4.0, 4.0], [3.0, -3.0], [-3.0, 3.0]], dtype=np.float32), labels)
    assert 0.05 <= calibrated <= 20.0


def test_save_adapter_is_atomic(base_info, untrained_adapter_dir: Path, tmp_path: Path):
    class DiskFullMidSave:
        def save_pretrained(self, path: str, safe_serialization: bool) -> None:
            (Path(path) / "adapter_model.safetensors").write_bytes(b"half a tensor")
            raise OSError("No space left on device")

    target = tmp_path / "adapter"
    with pytest.raises(OSError, match="No space left"):
        save_adapter(DiskFullMidSave(), target, ["a", "b"], base_info, TrainingConfig(), {})
    assert not target.exists()  # nothing a reader could take for an adapter

    shutil.copytree(untrained_adapter_dir, target)  # an earlier adapter is replaced whole, never mixed with a new one
    with pytest.raises(OSError):
        save_adapter(DiskFullMidSave(), target, ["a", "b"], base_info, TrainingConfig(), {})
    assert (target / "adapter_model.safetensors").read_bytes() == (
        untrained_adapter_dir / "adapter_model.safetensors").read_bytes()
