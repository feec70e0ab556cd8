"""Evaluation: metrics and business cost, the evaluation policy, the promotion gate, abstention."""
