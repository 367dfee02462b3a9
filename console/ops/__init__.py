"""Operator commands behind ``llm-worker``: status, dashboard, up, send, requeue-dead."""
