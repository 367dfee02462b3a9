"""What operators see: log formatting and redaction, the Prometheus metrics, and the
traces (OpenTelemetry, an optional extra) behind one seam, :mod:`.tracing`.

May import: the top-level modules.
"""
