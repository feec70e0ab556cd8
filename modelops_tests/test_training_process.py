"""The training process entry point: its job round-trips through Pipes extras, it never outlives its run worker, and
a job on a causal-LM base trains a generative adapter, from scratch or from an earlier one."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import time
from pathlib import Path

from modelops.app.training_process import run_job
from modelops.core.atomic import write_parquet_atomic
from modelops.core.data.datagen import generate_corpus
from modelops.core.data.instructions import extraction_tasks
from modelops.core.registry.registry import ModelRegistry
from modelops.core.training.training_run import TrainingJob
from modelops_tests.helpers import build_tiny_causal_lm

WATCHED = """
import sys, time
from modelops.app.training_process import stop_when_owner_dies
stop_when_owner_dies(int(sys.argv[1]), poll_seconds=0.1)
time.sleep(60)
"""


def test_job_round_trips_through_pipes_extras() -> None:
    job = TrainingJob(train_path="t.parquet", validation_path="v.parquet", base_path="/base", base_task_type="seq",
                      training={"epochs": 1, "lora": {"r": 4}}, output_dir="/out", tracking_uri="sqlite:///m.db",
                      model_name="m", mlflow_run_id="abc", error_path="/e.txt", owner_pid=42)
    assert TrainingJob.from_extras({**job.to_extras(), "added_by_a_newer_launcher": 1}) == job


def test_training_stops_when_the_run_worker_that_launched_it_dies() -> None:
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
    training = subprocess.Popen([sys.executable, "-c", WATCHED, str(worker.pid)])
    worker.wait()
    started = time.monotonic()
    assert training.wait(timeout=20) == 3  # exited on its own, well before its 60 s of "training"
    assert time.monotonic() - started < 20


def test_a_job_on_a_causal_lm_base_trains_a_generative_adapter_and_warm_starts_one(tmp_path: Path) -> None:
    tasks = extraction_tasks(generate_corpus(60, seed=1))
    base = build_tiny_causal_lm(tmp_path / "base", (tasks["prompt"] + tasks["response"]).tolist())
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", "extractor", tmp_path / "mlartifacts")
    training = {"epochs": 2, "batch_size": 8, "learning_rate": 0.02, "max_length": 128,
                "lora": {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]}}
    with registry.run("train-full", {}) as run_id:
        job = TrainingJob(train_path=str(write_parquet_atomic(tasks.iloc[:48], tmp_path / "train.parquet")),
                          validation_path=str(write_parquet_atomic(tasks.iloc[48:], tmp_path / "val.parquet")),
                          base_path=str(base), base_task_type="causal-lm", training=training,
                          output_dir=str(tmp_path / "adapter"), tracking_uri=registry.tracking_uri,
                          model_name="extractor", mlflow_run_id=run_id, error_path=str(tmp_path / "error.txt"))
        summary = run_job(job, logging.getLogger(__name__))
    cold_run = run_id
    assert summary["best_val_loss"] > 0 and summary["steps"] == 12
    assert "| val_loss |" in summary["history"]["raw_value"]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert len(registry.client.get_metric_history(run_id, "val_loss")) == 2  # one per evaluation period
    with registry.run("train-incremental", {}) as run_id:
        warm = run_job(dataclasses.replace(job, init_adapter=str(tmp_path / "adapter"), mlflow_run_id=run_id,
                                           output_dir=str(tmp_path / "warm")), logging.getLogger(__name__))
    cold, warm_losses = ([m.value for m in registry.client.get_metric_history(r, "val_loss")]
                         for r in (cold_run, run_id))
    assert warm_losses[0] < cold[0] and warm_losses[0] < summary["best_val_loss"] + 0.05  # continues from the adapter
    assert warm["best_val_loss"] <= summary["best_val_loss"] + 0.05
