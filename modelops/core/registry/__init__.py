"""Registry: MLflow tracking and registered adapter versions, promotion, lineage."""
