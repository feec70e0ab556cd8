"""modelops: continuous adaptation of LoRA-customised models as Dagster assets."""

import os

# Sovereign: no usage report leaves the machine, whichever entry point (CLI, code location, server, training
# process) imports modelops first. Set before MLflow is imported anywhere; a user's own setting wins.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"
