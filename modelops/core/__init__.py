"""The pure ML core, by stage (data, training, evaluation, monitoring, registry, serving): no Dagster, no I/O layer."""
