"""The Dagster layer: thin definitions that call modelops.core."""
