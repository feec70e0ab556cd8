"""The training process entry point: its job round-trips through Pipes extras, and it never outlives its run worker."""

from __future__ import annotations

import subprocess
import sys
import time

from modelops.core.training.training_run import TrainingJob

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
