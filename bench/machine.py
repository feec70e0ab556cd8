"""What machine a benchmark ran on, recorded with every result, and the one-line-per-target measurement record."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
CLINC_DIR = ROOT.parent / "shared" / "datasets" / "clinc150"  # ../shared/datasets/clinc150 (README there)
LIBRARIES = ("torch", "transformers", "peft", "dagster", "evidently", "mlflow", "pandas", "numpy", "scipy",
             "scikit-learn", "onnxruntime", "onnx")
ROW_LIBRARIES = ("torch", "transformers", "peft", "dagster", "mlflow", "evidently")  # repeated on every summary row


def code_changes(porcelain: Sequence[str]) -> list[str]:
    """The `git status --porcelain` lines that change code: results written by benchmarks run before this one (a
    `run_all` sequence) under bench/results/ are outputs, not code under test."""
    return [line for line in porcelain if not line[3:].startswith("bench/results/")]


def provenance(sources: Sequence[str] = ()) -> dict[str, Any]:
    """Commit, working-tree state, library versions and hashes of the code under test (paths from the repo root)."""
    from importlib.metadata import PackageNotFoundError, version

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.rstrip()

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    changed = [line for line in git("status", "--porcelain").splitlines() if line]
    return {"git_commit": git("rev-parse", "HEAD"), "git_tree_clean": not code_changes(changed),
            "git_status_porcelain": changed,
            "source_sha256": {p: hashlib.sha256((ROOT / p).read_bytes()).hexdigest()[:16] for p in sources},
            "library_versions": versions}


@dataclass(frozen=True)
class Measurement:
    """One figure against its baseline and target; `bench/results/summary.json` lists every one of these.

    `ratio` is value / baseline (None without a baseline); `met` says whether `target` (in words) holds, None for a
    figure that is only reported (no target) or that could not be measured (`value` None).
    """

    name: str
    value: float | None
    unit: str
    baseline: float | None
    target: str
    met: bool | None

    def __post_init__(self) -> None:
        if self.target.startswith("reported") and self.met is not None:
            raise ValueError(f"{self.name}: a reported figure has no target to meet; met must be None")

    def to_dict(self, machine_name: str, run: dict[str, Any]) -> dict[str, object]:
        """The row as summary.json lists it, with the commit, tree state and library versions of `run`
        (`provenance()`)."""
        ratio = self.value / self.baseline if self.baseline and self.value is not None else None
        return {**asdict(self), "ratio": ratio, "machine": machine_name, "commit": run["git_commit"],
                "tree_clean": run["git_tree_clean"],
                "versions": {name: run["library_versions"].get(name) for name in ROW_LIBRARIES}}


def machine() -> dict[str, object]:
    import torch

    info: dict[str, object] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                               "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                               "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_name(info: dict[str, object]) -> str:
    """Short label, e.g. '2-core AMD EPYC (cpu)' or 'NVIDIA H100 80GB HBM3'."""
    return str(info["gpu"]) if "gpu" in info else f"{info['cores']}-core {info['cpu']} (cpu)"


def write_result(name: str, result: dict[str, object], measurements: list[Measurement],
                 results_dir: Path = RESULTS) -> Path:
    """bench/results/<name>.json (machine, raw figures, measurements), plus one JSON line on stdout."""
    results_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    run = result.get("provenance") or provenance()
    payload = {"benchmark": name, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": info, **result, "provenance": run,
               "measurements": [m.to_dict(machine_name(info), run) for m in measurements]}
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload))
    return path
