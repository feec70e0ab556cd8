"""modelops: continuous adaptation of LoRA-customised models as Dagster assets."""

__version__ = "0.1.0"
