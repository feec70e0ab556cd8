"""Serving variants of a classifier: its merged PyTorch model exported to ONNX (fp32) and that graph dynamically
quantised to int8, both run by ONNX Runtime on the CPU.

A variant file holds the whole model (base, merged adapter and head) and answers `logits` and `pooled` (the mean of
the last hidden states over real tokens) for `input_ids` and `attention_mask`; the tokenizer, label names and
temperature still come from the base and the adapter folder, so an `OnnxClassifier` predicts exactly what the
PyTorch classifier does, up to the runtime's arithmetic.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops.core.serving.predictor import (
    Classifier,
    adapter_base,
    embedding_projection,
    labels_and_temperature,
    mean_pool,
)

if TYPE_CHECKING:
    from modelops.core.serving.predictor import AdapterClassifier
    from modelops.core.training.base_model import BaseModelInfo

log = logging.getLogger(__name__)

PYTORCH = "pytorch"
ONNX_FP32 = "onnx-fp32"
ONNX_INT8 = "onnx-int8"
VARIANT_FILES = {ONNX_INT8: "model.int8.onnx", ONNX_FP32: "model.onnx"}  # fastest first
OPSET = 17


class VariantError(RuntimeError):
    """A serving variant cannot be built or loaded; the message says which file and why."""


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_variants(classifier: AdapterClassifier, out_dir: Path) -> dict[str, Path]:
    """Write the fp32 ONNX graph of `classifier`'s merged model and its int8 quantisation into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(classifier.model, out_dir / VARIANT_FILES[ONNX_FP32])
    return {ONNX_INT8: quantise_int8(fp32, out_dir / VARIANT_FILES[ONNX_INT8]), ONNX_FP32: fp32}


def export_onnx(model: Any, path: Path) -> Path:
    """Trace a sequence classifier (batch and sequence length dynamic) into an ONNX graph at `path`."""
    import torch

    class LogitsAndPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            return out.logits, mean_pool(out.hidden_states[-1], attention_mask)

    example = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.inference_mode():  # the tracer's warnings are about code paths not taken
        warnings.simplefilter("ignore")
        torch.onnx.export(LogitsAndPooled().eval(), (example, example), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["input_ids", "attention_mask"], output_names=["logits", "pooled"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"},
                                        "pooled": {0: "batch"}})
    return path


def quantise_int8(fp32: Path, path: Path) -> Path:
    """Dynamic int8 quantisation of the graph's matrix multiplications: int8 weights, one scale per output channel
    (closer to fp32 than one per tensor), activations quantised per batch at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    root.addFilter(_without_quantiser_chatter)  # quantize_dynamic logs on the root logger
    try:
        quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.removeFilter(_without_quantiser_chatter)
    return path


def _without_quantiser_chatter(record: logging.LogRecord) -> bool:
    """Drops the quantiser's per-node INFO lines and its pre-processing hint (a warning about a step this graph does
    not need); its other warnings and errors pass."""
    from_quantiser = f"onnxruntime{os.sep}quantization" in record.pathname
    return not from_quantiser or (record.levelno > logging.INFO
                                  and "pre-processing before quantization" not in record.getMessage())


class OnnxClassifier(Classifier):
    """A classifier served by ONNX Runtime from a variant file: same tokenizer, labels and temperature as the
    PyTorch classifier it was exported from."""

    def __init__(self, tokenizer: Any, label_names: list[str], temperature: float, model_file: Path,
                 max_length: int = 128, threads: int | None = None) -> None:
        self.tokenizer, self.label_names, self.temperature, self.max_length = (tokenizer, list(label_names),
                                                                               temperature, max_length)
        self.model_file = Path(model_file)
        self.session = _session(self.model_file, threads or available_cores())
        outputs = {output.name: output.shape for output in self.session.get_outputs()}
        if set(outputs) != {"logits", "pooled"} or outputs["logits"][1] != len(self.label_names):
            raise VariantError(f"{self.model_file} is not this classifier's graph: outputs {outputs}, expected logits "
                               f"for {len(self.label_names)} labels and pooled hidden states")
        self._projection = embedding_projection(int(outputs["pooled"][1]))

    @classmethod
    def of(cls, classifier: Classifier, model_file: Path) -> OnnxClassifier:
        """The variant at `model_file` of a loaded classifier (sharing its tokenizer)."""
        return cls(classifier.tokenizer, classifier.label_names, classifier.temperature, model_file,
                   classifier.max_length)

    @classmethod
    def from_adapter(cls, base: BaseModelInfo, adapter_dir: Path, model_file: Path) -> OnnxClassifier:
        """The variant at `model_file` of the adapter at `adapter_dir` (its labels, temperature and base tokenizer)."""
        from modelops.core.training.base_model import load_tokenizer

        return cls(load_tokenizer(adapter_base(base, Path(adapter_dir))), *labels_and_temperature(Path(adapter_dir)),
                   model_file)

    def _forward(self, sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(s) for s in sequences)
        input_ids = np.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, seq in enumerate(sequences):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        logits, pooled = self.session.run(["logits", "pooled"], {"input_ids": input_ids, "attention_mask": mask})
        return logits, pooled


def _session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session: all graph optimisations, `threads` intra-op threads, one inter-op thread (the
    server runs one micro-batch at a time)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for unreadable or invalid graphs
        raise VariantError(f"ONNX Runtime cannot load {path}: {error}") from error
