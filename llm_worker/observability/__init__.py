"""What operators see: log formatting and redaction, and the Prometheus metrics.

May import: the top-level modules.
"""
