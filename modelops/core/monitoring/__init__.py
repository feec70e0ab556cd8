"""Monitoring: captured traffic, drift checks and their calibration, the retrain decision, labelling queues."""
