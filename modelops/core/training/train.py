"""LoRA fine-tuning (PEFT) of a local base model, fast on CPU by design.

Speed comes from doing less work, not from cutting corners: texts are tokenised once, batches are grouped
by length and padded only to their own longest text, validation runs once per evaluation period under
`torch.inference_mode`, and only the adapter (plus the classification head) is trained and saved.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelops.core.training.base_model import (
    BaseModelInfo,
    load_base_model,
    load_tokenizer,
    require_safetensors_adapter,
)
from modelops.core.training.batching import Batch, LossFunction, epoch_schedule, pad_batch
from modelops.core.training.classifier_head import grow_classifier_head, warm_start_labels
from modelops.core.training.cpu_dropout import use_cpu_dropout
from modelops.core.training.distributed import average_gradients, world
from modelops.core.training.first_token_layer import first_token_last_layer
from modelops.core.training.training_config import TrainingConfig

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, float]], None]
ADAPTER_MANIFEST = "modelops.json"
LABELS_FILE = "labels.json"
TRAINING_CONFIG_ARTIFACT = "training/config.json"  # the run's whole TrainingConfig (TrainingConfig.model_validate)


class TrainingConfigError(ValueError):
    """Training was asked to do something it cannot do; the message says how to fix it."""


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced: the adapter folder and how training went."""

    adapter_dir: Path
    label_names: list[str]
    best_score: float
    best_step: int
    steps: int
    train_samples: int
    train_seconds: float
    samples_per_second: float
    stopped_early: bool
    temperature: float
    history: list[dict[str, float]]


def _model_loss(model: Any, batch: Batch) -> torch.Tensor:
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss


def training_device() -> torch.device:
    """This process's GPU when there is one, else the CPU."""
    import torch

    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def uses_bf16(device: torch.device, mixed_precision: bool = True) -> bool:
    """Whether training steps run under bf16 autocast on `device`: on a GPU, and on a CPU with native bf16 arithmetic
    (AVX512-BF16 or AMX), where it is ~1.7x faster than fp32 for MiniLM; elsewhere bf16 would be emulated, so fp32.
    Weights and optimizer state stay fp32 either way; validation runs in the same precision as the steps."""
    import torch

    if not mixed_precision:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _head_modules(model: Any) -> list[str]:
    """The classification head plus the pooling layer feeding it (BERT's pooler, DistilBERT's pre_classifier).

    Sentence-embedding bases such as all-MiniLM-L6-v2 never trained their CLS pooler; training it with the head
    makes the adapter learn in a fraction of the steps. It is saved with the adapter, not with the base.
    """
    names = {name.split(".")[-1] for name, _ in model.named_modules()}
    return [m for m in ("classifier", "score", "pooler", "pre_classifier") if m in names]


def peft_model(base_model: Any, config: TrainingConfig, task_type: str, init_adapter: Path | None) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if init_adapter is not None:
        return PeftModel.from_pretrained(base_model, str(require_safetensors_adapter(init_adapter)), is_trainable=True)
    lora = LoraConfig(
        task_type=task_type,
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=list(config.lora.target_modules),
        modules_to_save=_head_modules(base_model) if task_type == "SEQ_CLS" else None,
    )
    try:
        return get_peft_model(base_model, lora)
    except ValueError as exc:
        raise TrainingConfigError(
            f"LoRA target modules {list(config.lora.target_modules)} do not match the base model's layers: {exc}"
        ) from exc


def compile_repeated_blocks(model: Any) -> int:
    """Compile every block of the model's longest `ModuleList` (its transformer layers) with `torch.compile`.

    Regional compilation: the blocks share code, so one compilation serves all of them (parameters are inputs; a
    last layer that computes only the first token, first_token_layer.py, compiles once more),
    which keeps compile time to seconds while fusing the memory-bound work (norms, rotary embeddings, activations,
    LoRA scaling) that dominates a frozen-base step. Returns the number of blocks compiled.
    """
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        return 0
    blocks = max(lists, key=len)
    for block in blocks:
        block.compile()
    return len(blocks)


def fit_adapter(
    model: Any,
    train_batches: Callable[[int], list[Batch]],
    steps_per_epoch: int,
    validate: Callable[[], dict[str, float]],
    score_key: str,
    config: TrainingConfig,
    on_progress: ProgressCallback | None,
    compute_loss: LossFunction = _model_loss,
) -> tuple[float, int, int, int, bool, list[dict[str, float]], float]:
    """The training loop: AdamW + linear warm-up/decay, periodic validation, early stopping, best state kept.

    Data-parallel (under torchrun) each process steps on its share of the batch with averaged gradients and validates
    the same weights on the whole validation set, so every process takes the same early-stopping decisions; only the
    first reports progress.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    device = next(model.parameters()).device
    rank, processes = world()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, config.mixed_precision))

    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    if device.type == "cuda" and total_steps >= config.compile_min_steps:  # ~40 s of compilation pays back
        log.info("compiled %d repeated blocks", compile_repeated_blocks(model))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=device.type == "cuda")
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(total_steps * config.warmup_ratio), total_steps)
    eval_every = max(1, steps_per_epoch // config.evaluations_per_epoch)
    best_score, best_step, bad_evals, step, samples = -math.inf, 0, 0, 0, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()
                  if "lora_" in k or "modules_to_save" in k}
    history: list[dict[str, float]] = []
    train_time = 0.0
    stopped_early = False
    for epoch in range(config.epochs):
        tick = time.perf_counter()
        for batch in train_batches(epoch):
            model.train()
            with autocast:
                loss = compute_loss(model, batch.to(device))
            loss.backward()
            average_gradients(params)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            samples += len(batch.input_ids) * processes  # exact up to one row per process on uneven batches
            last = step == total_steps or step % steps_per_epoch == 0
            if step % eval_every == 0 or last:
                train_loss = float(loss.item())  # waits for the device, so the clock below counts finished work
                train_time += time.perf_counter() - tick
                metrics = {"step": float(step), "epoch": step / steps_per_epoch,
                           "train_loss": train_loss, "learning_rate": scheduler.get_last_lr()[0],
                           "samples_per_second": samples / max(train_time, 1e-9), **validate()}
                history.append(metrics)
                if on_progress and rank == 0:
                    on_progress(metrics)
                log.info("step %d: %s", step, {k: round(v, 4) for k, v in metrics.items()})
                if metrics[score_key] > best_score:
                    best_score, best_step, bad_evals = metrics[score_key], step, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items() if k in best_state}
                else:
                    bad_evals += 1
                tick = time.perf_counter()
            if step >= total_steps or bad_evals >= config.early_stopping_patience:
                break
        else:
            continue
        stopped_early = step < total_steps
        break
    model.load_state_dict(best_state, strict=False)
    return best_score, best_step, step, samples, stopped_early, history, train_time


def _logits(model: Any, encoded: list[list[int]], pad_id: int, bf16: bool, batch_size: int = 128) -> np.ndarray:
    import torch

    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = np.zeros((len(encoded), model.config.num_labels), dtype=np.float32)
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = pad_batch([encoded[i] for i in idx], pad_id, [0] * len(idx)).to(device)
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
            out[idx] = logits.float().cpu().numpy()
    return out


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling on validation logits (minimises NLL), so confidences are calibrated."""
    import torch

    log_t = torch.zeros(1, requires_grad=True)
    x, y = torch.from_numpy(logits), torch.from_numpy(labels).long()
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = log_t.exp().item()
    if not math.isfinite(temperature):  # LBFGS can diverge on a barely trained head: leave confidences as they are
        log.warning("temperature scaling diverged; using temperature 1.0")
        return 1.0
    return float(min(max(temperature, 0.05), 20.0))


def _check_labels(train: pd.DataFrame, validation: pd.DataFrame, init_adapter: Path | None) -> tuple[list[str], int]:
    """The model's label list (a warm start keeps the champion's order and appends new labels) and how many of them
    the warm-start adapter's head already has."""
    labels = sorted(set(train["label"]))
    if init_adapter is not None:
        champion_labels = read_label_names(init_adapter)
        labels = warm_start_labels(champion_labels, set(labels))
    if len(labels) < 2:
        raise TrainingConfigError(f"Training data has {len(labels)} label(s); a classifier needs at least two.")
    unseen = set(validation["label"]) - set(labels)
    if unseen:
        raise TrainingConfigError(f"Validation labels {sorted(unseen)} never occur in the training data"
                                  + (" or the warm-start adapter" if init_adapter is not None else "") + ".")
    return labels, len(champion_labels) if init_adapter is not None else len(labels)


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-averaged F1 over the labels in `truth` or `predicted` (integer ids), as scikit-learn's
    `f1_score(average="macro")` computes it; here so the training process does not import scikit-learn (0.6 s)."""
    labels = np.union1d(truth, predicted)
    hits = np.array([np.sum((truth == label) & (predicted == label)) for label in labels])
    counts = np.array([np.sum(truth == label) + np.sum(predicted == label) for label in labels])
    return float(np.mean(2 * hits / counts)) if len(labels) else 0.0


def read_label_names(adapter_dir: Path) -> list[str]:
    return list(json.loads((Path(adapter_dir) / LABELS_FILE).read_text()))


def train_classifier_adapter(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    base: BaseModelInfo,
    config: TrainingConfig,
    output_dir: Path,
    init_adapter: Path | None = None,
    on_progress: ProgressCallback | None = None,
    calibration: pd.DataFrame | None = None,
) -> TrainingResult:
    """Train a LoRA adapter + classification head on `text,label` frames; save it (safetensors) to output_dir.

    Early stopping and the best checkpoint follow `validation`; the confidence temperature is fitted on `calibration`
    (default: the validation rows, whose logits are then reused). An incremental run validates on a small mix of new
    and old rows (`incremental_validation_set`) but calibrates on the whole split: a one-parameter fit on ~70 rows the
    model may get all right would drive the temperature to its floor and serve overconfident probabilities."""
    if base.task_type != "sequence-classification":
        raise TrainingConfigError(f"Base {base.name} is configured as {base.task_type}; use train_causal_lm_adapter.")
    if config.mode == "incremental" and init_adapter is None:
        raise TrainingConfigError("Incremental training needs an adapter to warm-start from (the current champion).")
    held_out = validation if calibration is None else pd.concat([validation, calibration])
    labels, head_rows = _check_labels(train, held_out, init_adapter)
    label_ids = {name: i for i, name in enumerate(labels)}
    seed_everything(config.seed)
    tokenizer = load_tokenizer(base)
    model = peft_model(load_base_model(base, num_labels=head_rows), config, "SEQ_CLS", init_adapter)
    grow_classifier_head(model, len(labels))  # new classes in a warm start: one fresh head row each
    model.to(training_device())
    if training_device().type == "cpu":
        use_cpu_dropout(model)  # the same dropout at a fraction of its random-number cost (cpu_dropout.py)
    if first_token_last_layer(model):  # the head reads only the first token of the last layer
        log.info("last encoder layer computes the first token only (first_token_layer.py)")

    def encode(texts: pd.Series) -> list[list[int]]:
        return tokenizer(list(texts), truncation=True, max_length=config.max_length)["input_ids"]

    train_ids, val_ids = encode(train["text"]), encode(validation["text"])
    train_y = [label_ids[x] for x in train["label"]]
    val_y = np.array([label_ids[x] for x in validation["label"]])
    epoch_batches, steps_per_epoch = epoch_schedule(train_ids, train_y, tokenizer.pad_token_id, config)

    bf16 = uses_bf16(training_device(), config.mixed_precision)  # validation runs in the training steps' precision
    kept: dict[str, Any] = {}  # validation logits of the state _fit restores: the first evaluation with the top score

    def validate() -> dict[str, float]:
        logits = _logits(model, val_ids, tokenizer.pad_token_id, bf16)
        predicted = logits.argmax(axis=1)
        metrics = {"val_macro_f1": macro_f1(val_y, predicted),
                   "val_accuracy": float((predicted == val_y).mean())}
        if not kept or metrics["val_macro_f1"] > kept["score"]:
            kept.update(logits=logits, score=metrics["val_macro_f1"])
        return metrics

    best, best_step, steps, samples, stopped, history, seconds = fit_adapter(
        model, epoch_batches, steps_per_epoch, validate, "val_macro_f1", config, on_progress
    )
    if calibration is None:
        temperature = fit_temperature(kept["logits"], val_y)  # the restored state's validation logits, not recomputed
    else:
        temperature = fit_temperature(_logits(model, encode(calibration["text"]), tokenizer.pad_token_id, bf16),
                                      np.array([label_ids[x] for x in calibration["label"]]))
    output_dir = Path(output_dir)
    if world()[0] == 0:
        save_adapter(model, output_dir, labels, base, config, {"temperature": temperature, "best_val_macro_f1": best})
    return TrainingResult(output_dir, labels, best, best_step, steps, samples, seconds, samples / max(seconds, 1e-9),
                          stopped, temperature, history)


def partial_dir(output_dir: Path) -> Path:
    """The sibling folder save_adapter writes into before its atomic rename to `output_dir`."""
    return output_dir.with_name(output_dir.name + ".partial")


def save_adapter(model: Any, output_dir: Path, labels: list[str], base: BaseModelInfo, config: TrainingConfig,
                 extra: dict[str, float]) -> None:
    """Write only the adapter (safetensors) plus its label map and a manifest naming the base it belongs to.

    Atomic: the files go to a sibling `.partial` folder that is renamed to `output_dir` once complete, so a process
    killed mid-save leaves no folder at `output_dir` (an existing one is replaced only at the rename).
    """
    import shutil

    output_dir = Path(output_dir)
    partial = partial_dir(output_dir)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save_pretrained(str(partial), safe_serialization=True)
    (partial / LABELS_FILE).write_text(json.dumps(labels))
    manifest = {"base": base.to_dict(), "training": config.to_params(), **extra}
    (partial / ADAPTER_MANIFEST).write_text(json.dumps(manifest, indent=2))
    if output_dir.exists():
        shutil.rmtree(output_dir)
    partial.rename(output_dir)


SeenRows = set[tuple[str, str]]  # the (id, label) pairs of the curated set a champion was trained on


def seen_rows(curated: pd.DataFrame) -> SeenRows:
    """The (id, label) pairs of a champion's curated set (`id` and `label` columns)."""
    return set(zip(curated["id"], curated["label"], strict=True))


def new_rows(frame: pd.DataFrame, seen: SeenRows) -> np.ndarray:
    """Which rows of `frame` are new to the champion that was trained on `seen`: a text it never saw, or a text it saw
    with another label (feedback corrected it, and the correction is what the run must learn)."""
    pairs = zip(frame["id"], frame["label"], strict=True)
    return np.fromiter((pair not in seen for pair in pairs), dtype=bool, count=len(frame))


def incremental_training_set(train: pd.DataFrame, seen: SeenRows, config: TrainingConfig,
                             severity: str | None = None) -> pd.DataFrame:
    """New examples (`new_rows`) plus a seeded replay sample of earlier ones, against forgetting.

    Replayed rows make up `replay_share.share(severity)` of the result (the drift that started the run; None: started
    by hand), and number at least `replay_per_old_label` per old label (capped by what exists), spread over the old
    labels in proportion to their share (`stratified_sample`): a random sample can skip a small class.
    """
    is_new = new_rows(train, seen)
    if not is_new.any():
        raise TrainingConfigError("Incremental training found no examples the champion has not seen; nothing to learn.")
    return _new_and_replayed(train, is_new, config, severity)


def incremental_validation_set(validation: pd.DataFrame, seen: SeenRows, config: TrainingConfig,
                               severity: str | None = None) -> pd.DataFrame:
    """The validation rows an incremental run stops early on: mixed as its training set is (every new row, the same
    replay share of old ones, stratified), so the score falls when the new traffic is not learnt and when the old is
    forgotten, at a fraction of the whole split's cost. The whole split when that mix would be empty (no new
    validation rows and no per-label floor)."""
    mixed = _new_and_replayed(validation, new_rows(validation, seen), config, severity)
    return mixed if len(mixed) else validation.sample(frac=1.0, random_state=config.seed).reset_index(drop=True)


def _new_and_replayed(frame: pd.DataFrame, is_new: np.ndarray, config: TrainingConfig,
                      severity: str | None) -> pd.DataFrame:
    """`frame`'s new rows (`is_new`) plus the replay sample `config` asks for after drift of `severity`, shuffled
    (seeded)."""
    new, old = frame[is_new], frame[~is_new]
    share = config.replay_share.share(severity)
    wanted = max(round(len(new) * share / (1 - share)), config.replay_per_old_label * old["label"].nunique())
    replay = stratified_sample(old, min(len(old), wanted), config.seed)
    return pd.concat([new, replay]).sample(frac=1.0, random_state=config.seed).reset_index(drop=True)


def stratified_sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`n` seeded rows of `frame`, each label's share as in `frame` (systematic sampling: the k-th row of a label
    with c rows is taken at position (k + 0.5) / c, so every label comes in as soon as its share reaches half a row)."""
    shuffled = frame.sample(frac=1.0, random_state=seed)
    position = (shuffled.groupby("label").cumcount() + 0.5) / shuffled.groupby("label")["label"].transform("size")
    return shuffled.iloc[np.argsort(position.to_numpy(), kind="stable")[:n]]
