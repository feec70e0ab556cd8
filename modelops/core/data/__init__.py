"""Data: ingestion and validation of examples, curation, labelled feedback, onboarding of own data, the generator."""
