"""Benchmarks: each compares modelops against the tool a user would otherwise use, in the same process run."""
