"""The whole loop as a user runs it: `modelops demo` with the real server, daemon, sensor, MLflow and model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelops.settings import PACKAGE_CONFIG_DIR
from modelops_tests.helpers import free_port


def _environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MODELOPS_HOME": str(tmp_path / "home"), "MODELOPS_DATA_DIR": str(tmp_path / "data"),
            "MODELOPS_TRAINING_CONFIG": str(tmp_path / "training.yaml"), "DAGSTER_HOME": str(tmp_path / "dagster"),
            "MODELOPS_DRIFT_SENSOR_INTERVAL_SECONDS": "3"}  # the demo's waits follow the sensor's ticks


def _run_demo(tmp_path: Path, extra: list[str], training_overrides: dict) -> dict:
    training = yaml.safe_load((PACKAGE_CONFIG_DIR / "training.yaml").read_text()) | training_overrides
    (tmp_path / "training.yaml").write_text(yaml.safe_dump(training))
    out = subprocess.run([sys.executable, "-m", "modelops.app.cli", "demo", "--port", str(free_port()), *extra],
                         env=_environment(tmp_path), capture_output=True, text=True, timeout=1500, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return json.loads((tmp_path / "home" / "demo-summary.json").read_text())


def _assert_loop_closed(summary: dict) -> None:
    assert summary["retrain_run"]["status"] == "SUCCESS"
    assert {"lora_adapter", "evaluation", "champion"} <= set(summary["retrain_run"]["seconds_per_step"])
    assert summary["normal_traffic_share_drifted"] < summary["drifted_traffic_share_drifted"]
    assert summary["gate_passed"] is True
    assert int(summary["final_champion"]) > int(summary["first_champion"])
    assert summary["held_out_drifted_accuracy_after"] >= summary["held_out_drifted_accuracy_before"]
    # the promoted champion serves as an ONNX variant (fp32 matches PyTorch, so one always passes the policy)
    assert summary["served_variant"] in ("onnx-int8", "onnx-fp32"), summary["served_variant_reason"]


def test_demo_loop_small(tmp_path: Path):
    """Faster variant: a smaller corpus and fewer epochs, same components and stages."""
    summary = _run_demo(tmp_path, ["--rows", "1000", "--epochs", "2"], {"epochs": 2})
    _assert_loop_closed(summary)
    lineage = subprocess.run([sys.executable, "-m", "modelops.app.cli", "lineage", "support-router",
                              str(summary["final_champion"])], env=_environment(tmp_path), capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
    assert lineage.returncode == 0, lineage.stderr[-2000:]
    chain = lineage.stdout  # the drift-triggered retrain, traced back to the sensor's drift event and its batches
    for expected in ("- drift event: severity", "- traffic batches:", "- training: ", "Dagster run SUCCESS",
                     "- gate: passed", f"-> v{summary['final_champion']} at",
                     f"- v{summary['first_champion']}: ", f"- v{summary['final_champion']}: "):
        assert expected in chain, (expected, chain)
    _assert_mlflow_tells_the_story(tmp_path, str(summary["final_champion"]))


def _assert_mlflow_tells_the_story(tmp_path: Path, version: str) -> None:
    """The drift-triggered version's training run holds its adapter, label map and the Evidently report of the drift
    that triggered it; its evaluation run holds the evaluation report; both link back to their Dagster run."""
    from modelops.core.registry.registry import ModelRegistry

    registry = ModelRegistry(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}", "support-router")
    training = registry.client.get_run(registry.client.get_model_version("support-router", version).run_id)
    files = {f.path for folder in ("", "adapter", "drift") for f in registry.client.list_artifacts(training.info.run_id,
                                                                                                   folder or None)}
    assert {"drift/report.html", "adapter/labels.json"} <= files, files
    assert training.data.tags["modelops.dagster_run_url"].endswith(training.data.tags["modelops.dagster_run_id"])
    (evaluation,) = registry.client.search_runs([registry.experiment_id],
                                                f"tags.`modelops.challenger_version` = '{version}'")
    assert {"evaluation/report.html", "evaluation/report.md"} <= {
        f.path for f in registry.client.list_artifacts(evaluation.info.run_id, "evaluation")}
    assert "modelops.dagster_run_url" in evaluation.data.tags


@pytest.mark.slow
def test_demo_loop_default(tmp_path: Path):
    """The README's main command with its defaults."""
    _assert_loop_closed(_run_demo(tmp_path, [], {}))
