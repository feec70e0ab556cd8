"""The HTTP prediction service (`modelops serve`): request parsing, micro-batching, hot reload, traffic capture."""
