"""Application commands: the `modelops` CLI, the demo, migration, the Dagster instance, the training process."""
