"""The training process, started through Dagster Pipes: `python -m modelops.app.training_process`.

The `lora_adapter` asset launches it as a local subprocess (default) or in a Kubernetes pod, under torchrun when
several processes train data-parallel. It reads a `TrainingJob` from the Pipes extras, trains with
`modelops.core.training.train` (`causal_lm` for a causal-LM base), logs each evaluation period's metrics to the
MLflow run the asset opened, streams progress to the Dagster run's logs and reports the training summary as the
asset's materialisation metadata. Only the first process (rank 0) talks to Dagster and MLflow and writes the adapter.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from modelops.core.training.training_run import TrainingJob

OWNER_POLL_SECONDS = 2.0


def stop_when_owner_dies(pid: int, poll_seconds: float = OWNER_POLL_SECONDS) -> threading.Thread:
    """Exit this process (status 3) once `pid` is gone: a killed run worker must not leave training running.

    When `pid` is this process's parent, being re-parented also counts (a dead parent may linger as a zombie).
    """
    from modelops.core.registry.registry import pid_alive

    watch_parent = os.getppid() == pid

    def watch() -> None:
        while pid_alive(pid) and not (watch_parent and os.getppid() != pid):
            time.sleep(poll_seconds)
        os._exit(3)

    thread = threading.Thread(target=watch, name="owner-watch", daemon=True)
    thread.start()
    return thread


def run_job(job: TrainingJob, log: Any) -> dict[str, Any]:
    """Train as `job` says (a classifier, or a causal LM when its base is one); returns the summary that becomes the
    asset's metadata (Pipes metadata format)."""
    import pandas as pd

    from modelops.core.markdown import frame_table
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.training.distributed import world
    from modelops.core.training.train import training_device, uses_bf16
    from modelops.core.training.training_config import TrainingConfig

    config = TrainingConfig.model_validate(job.training)
    base = describe_base_model(Path(job.base_path), job.base_task_type)  # type: ignore[arg-type]
    registry = ModelRegistry(job.tracking_uri, job.model_name)
    rank, processes = world()
    train, validation = pd.read_parquet(job.train_path), pd.read_parquet(job.validation_path)
    score, score_name = ("val_loss", "val loss") if base.task_type == "causal-lm" else ("val_macro_f1", "val macro-F1")

    def progress(metrics: dict[str, float]) -> None:
        registry.log_metrics(job.mlflow_run_id, metrics, step=int(metrics["step"]))
        log.info(f"step {metrics['step']:.0f} epoch {metrics['epoch']:.2f}: loss {metrics['train_loss']:.4f}, "
                 f"{score_name} {metrics[score]:.4f}, {metrics['samples_per_second']:.1f} samples/s")

    if base.task_type == "causal-lm":
        from modelops.core.training.causal_lm import train_causal_lm_adapter

        result = train_causal_lm_adapter(train, validation, base, config, Path(job.output_dir), progress,
                                         Path(job.init_adapter) if job.init_adapter else None)
        best = {"best_val_loss": -result.best_score}
    else:
        from modelops.core.training.train import train_classifier_adapter

        result = train_classifier_adapter(train, validation, base, config, Path(job.output_dir),
                                          Path(job.init_adapter) if job.init_adapter else None, progress,
                                          pd.read_parquet(job.calibration_path) if job.calibration_path else None)
        best = {"best_val_macro_f1": result.best_score, "temperature": result.temperature}
    if rank != 0:
        return {}
    summary = {**best, "train_seconds": result.train_seconds, "train_samples_per_second": result.samples_per_second,
               "steps": result.steps}
    registry.log_metrics(job.mlflow_run_id, summary)
    history = pd.DataFrame(result.history)[["step", "epoch", "train_loss", score, "samples_per_second"]]
    return {**summary, "stopped_early": result.stopped_early, "training_processes": processes,
            "training_device": str(training_device()),
            "training_precision": "bf16 autocast" if uses_bf16(training_device(), config.mixed_precision) else "fp32",
            "training_host": socket.gethostname(),
            "training_pid": os.getpid(),
            "history": {"raw_value": frame_table(history, index=False), "type": "md"}}


def main() -> None:
    """Entry point of every training process; rank 0 opens Dagster Pipes and hands the job to the others."""
    from dagster_pipes import open_dagster_pipes

    from modelops.core.training.distributed import broadcast_from_first, join_process_group, leave_process_group

    join_process_group()
    try:
        if int(os.environ.get("RANK", "0")) == 0:
            with open_dagster_pipes() as pipes:
                job = TrainingJob.from_extras(broadcast_from_first(dict(pipes.extras)))
                if job.owner_pid:
                    stop_when_owner_dies(job.owner_pid)
                try:
                    metadata = run_job(job, pipes.log)
                except Exception as exc:
                    Path(job.error_path).write_text(f"{type(exc).__name__}: {exc}")
                    raise
                pipes.report_asset_materialization(metadata=metadata)
        else:
            job = TrainingJob.from_extras(broadcast_from_first(None))
            if job.owner_pid:
                stop_when_owner_dies(job.owner_pid)
            run_job(job, logging.getLogger(__name__))  # only rank 0 reports progress
    finally:
        leave_process_group()


if __name__ == "__main__":
    main()
