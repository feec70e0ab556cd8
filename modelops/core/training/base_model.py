"""Locate, identify and load a local Hugging Face base model (offline, safetensors only)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

TaskType = Literal["sequence-classification", "causal-lm"]
TASK_TYPES: tuple[TaskType, ...] = ("sequence-classification", "causal-lm")


class BaseModelError(ValueError):
    """The configured base model cannot be used."""


@dataclass(frozen=True)
class BaseModelInfo:
    """Identity of a base model: where it lives, what it is called, and the hash of its weights."""

    path: Path
    name: str
    sha256: str
    task_type: TaskType

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def weights_sha256(path: Path) -> str:
    """sha256 over the base model's safetensors files (names and bytes, in sorted order)."""
    files = sorted(path.glob("*.safetensors"))
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def describe_base_model(path: Path, task_type: TaskType = "sequence-classification") -> BaseModelInfo:
    """Validate a local model folder and return its identity; raises BaseModelError with a fix on problems."""
    path = Path(path).expanduser().resolve()
    if task_type not in TASK_TYPES:
        raise BaseModelError(f"Unknown task type {task_type!r}; use one of {TASK_TYPES}.")
    if not path.is_dir():
        raise BaseModelError(
            f"Base model folder {path} does not exist. Point base_model_path (MODELOPS_BASE_MODEL_PATH) "
            "at a local Hugging Face model folder."
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise BaseModelError(f"{path} has no config.json; it is not a Hugging Face model folder.")
    if not any(path.glob("*.safetensors")):
        raise BaseModelError(
            f"{path} has no *.safetensors weights. modelops loads only safetensors (never pickled .bin files); "
            "convert the checkpoint with `safetensors` first."
        )
    config = json.loads(config_file.read_text())
    name = str(config.get("_name_or_path") or path.name)
    if name in ("", "."):
        name = path.name
    return BaseModelInfo(path=path, name=name, sha256=weights_sha256(path), task_type=task_type)


def require_safetensors_adapter(adapter_dir: Path) -> Path:
    """Refuse an adapter folder without `adapter_model.safetensors`: PEFT would otherwise unpickle a `.bin` file."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise BaseModelError(f"{adapter_dir} holds no adapter_model.safetensors; modelops loads adapters only from "
                             "safetensors (never pickled .bin files). Re-export the adapter with safe_serialization.")
    return adapter_dir


def load_tokenizer(info: BaseModelInfo) -> PreTrainedTokenizerBase:
    """The base model's tokenizer, with a pad token guaranteed."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(info.path), local_files_only=True, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(info: BaseModelInfo, num_labels: int | None = None, dtype: Any = None) -> PreTrainedModel:
    """The base model for the task: a classifier with `num_labels` outputs, or a causal LM (fp32 unless `dtype`)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    common = {"local_files_only": True, "trust_remote_code": False, "use_safetensors": True,
              "dtype": dtype or "float32"}
    if info.task_type == "sequence-classification":
        if not num_labels or num_labels < 2:
            raise BaseModelError("A sequence-classification base needs at least two labels.")
        model = AutoModelForSequenceClassification.from_pretrained(str(info.path), num_labels=num_labels, **common)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(info.path), **common)
    if model.config.pad_token_id is None and model.config.eos_token_id is not None:
        model.config.pad_token_id = model.config.eos_token_id
    return model
