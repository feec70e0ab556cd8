"""Memory of serving N customisations: N adapters on one shared base vs N separate merged models (the baseline),
and N int8 ONNX graphs (what `modelops serve` runs per customisation by default, `serving_runtime: fastest`).

Each configuration loads in a fresh process: N real LoRA adapters (r=8 on query/value, distinct heads, random
non-zero LoRA weights, saved as training saves them) on the shipped MiniLM, as `modelops serve` loads champions:
`SharedBases.load` for the shared base, `AdapterClassifier` (one merged copy of the base each) for the baseline,
`OnnxClassifier.from_adapter` on each adapter's int8 variant (exported and quantised beforehand by `export_variants`)
for int8.
Reported: resident memory after loading and one prediction per customisation, minus the same process's memory
before loading (imports, tokenizer and a warm-up forward of another model included in neither), the memory each
added customisation costs, and the time of a 64-text prediction (unmerged LoRA costs a little per forward).
Run on an otherwise idle machine: the prediction times are sensitive to other load.

Usage: python -m bench.multi_adapter_memory
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.machine import Measurement

COUNTS = (1, 2, 4, 8)
TARGET_MARGINAL = 0.1  # an added customisation costs at most a tenth of what an added separate model costs


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _make_adapters(folder: Path, count: int) -> list[Path]:
    from peft import LoraConfig, get_peft_model

    from modelops.core.training.base_model import describe_base_model, load_base_model
    from modelops.core.training.train import save_adapter, seed_everything
    from modelops.core.training.training_config import TrainingConfig
    from modelops.settings import default_base_model_path

    base = describe_base_model(default_base_model_path())
    paths = []
    for i in range(count):
        seed_everything(i)
        labels = [f"label_{j}" for j in range(3 + i % 5)]
        model = get_peft_model(load_base_model(base, num_labels=len(labels)),
                               LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"],
                                          init_lora_weights=False))
        save_adapter(model, folder / f"customisation_{i}", labels, base, TrainingConfig(), {"temperature": 1.0})
        paths.append(folder / f"customisation_{i}")
    return paths


def measure(mode: str, adapters: list[str]) -> dict[str, float]:
    """In this process: load the adapters (`shared` or `separate`), predict once each; memory and predict time."""
    import gc
    import time

    from modelops.core.training.base_model import describe_base_model, load_tokenizer
    from modelops.core.data.datagen import generate_corpus
    from modelops.core.serving.onnx_variants import ONNX_INT8, VARIANT_FILES, OnnxClassifier
    from modelops.core.serving.predictor import AdapterClassifier, SharedBases
    from modelops.settings import default_base_model_path

    base = describe_base_model(default_base_model_path())
    load_tokenizer(base)
    texts = generate_corpus(64, seed=5)["text"].tolist()
    import peft  # noqa: F401  (imports and allocator warm-up counted in neither configuration)
    import torch

    torch.nn.functional.linear(torch.ones(64, 384), torch.ones(384, 384)).sum()
    gc.collect()
    before = _rss_mb()
    shared = SharedBases(base)
    loaders = {"shared": shared.load, "separate": lambda a: AdapterClassifier(base, a),
               "int8": lambda a: OnnxClassifier.from_adapter(base, a, a.parent / f"{a.name}-variants" /
                                                             VARIANT_FILES[ONNX_INT8])}
    models = [loaders[mode](Path(a)) for a in adapters]
    for model in models:
        model.predict(texts[:8])
    gc.collect()
    loaded = _rss_mb() - before
    start = time.perf_counter()
    for _ in range(3):
        models[0].predict(texts)
    return {"memory_mb": round(loaded, 1), "predict_64_ms": round((time.perf_counter() - start) / 3 * 1000, 1)}


def _in_fresh_process(mode: str, adapters: list[Path]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "bench.multi_adapter_memory", "--measure", mode,
                          *map(str, adapters)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from bench.machine import write_result

    from modelops.core.serving.onnx_variants import export_variants
    from modelops.core.serving.predictor import AdapterClassifier
    from modelops.core.training.base_model import describe_base_model
    from modelops.settings import default_base_model_path

    base = describe_base_model(default_base_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        adapters = _make_adapters(Path(tmp), max(COUNTS))
        for adapter in adapters:
            export_variants(AdapterClassifier(base, adapter), adapter.parent / f"{adapter.name}-variants")
        rows = []
        for n in COUNTS:
            found = {mode: _in_fresh_process(mode, adapters[:n]) for mode in ("shared", "separate", "int8")}
            rows.append({"customisations": n, **{f"{mode}_mb": r["memory_mb"] for mode, r in found.items()},
                         "memory_ratio": round(found["shared"]["memory_mb"] / found["separate"]["memory_mb"], 3),
                         **{f"{mode}_predict_64_ms": r["predict_64_ms"] for mode, r in found.items()}})
    first, last = rows[0], rows[-1]
    added = last["customisations"] - first["customisations"]
    marginal = {f"{mode}_mb_per_added_customisation": round((last[f"{mode}_mb"] - first[f"{mode}_mb"]) / added, 2)
                for mode in ("shared", "separate", "int8")}
    write_result("multi_adapter_memory", {"results": rows, **marginal,
                                          "target": f"an added customisation <= {TARGET_MARGINAL} x an added model"},
                 measurements(rows, marginal))


def measurements(rows: list[dict], marginal: dict[str, float]) -> list[Measurement]:
    """Memory of N customisations on a shared base against N merged models, and what one more costs in each."""
    out = [Measurement(f"serving_memory_{row['customisations']}_customisations", row["shared_mb"], "MB",
                       row["separate_mb"], "reported", None) for row in rows]
    shared, separate = marginal["shared_mb_per_added_customisation"], marginal["separate_mb_per_added_customisation"]
    out.append(Measurement("serving_memory_per_added_customisation", shared, "MB", separate,
                           f"<= {TARGET_MARGINAL}x a separate model's", shared <= TARGET_MARGINAL * separate))
    at_four = next(row for row in rows if row["customisations"] == 4)
    out.append(Measurement("serving_predict_64_shared_base", at_four["shared_predict_64_ms"], "ms",
                           at_four["separate_predict_64_ms"], "reported (unmerged LoRA per forward)", None))
    out += [Measurement(f"serving_memory_{row['customisations']}_customisations_int8_vs_shared", row["int8_mb"], "MB",
                        row["shared_mb"], "reported (one int8 graph each vs one shared PyTorch base)", None)
            for row in rows]
    out.append(Measurement("serving_predict_64_int8_vs_shared_base", at_four["int8_predict_64_ms"], "ms",
                           at_four["shared_predict_64_ms"], "reported (4 customisations; lower is faster)", None))
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure(sys.argv[2], sys.argv[3:])))
    else:
        main()
